// In-band authentication on a host queue: a Connect response with AUTHREQ runs the DH-HMAC-CHAP
// exchange over Authentication Send / Receive before the queue is live (the controller's side is
// auth::DhchapController behind the fake controller).
#include <cstring>

#include "auth/dhchap.h"
#include "auth/dhchap_messages.h"
#include "base/endian.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/spec.h"
#include "tcp/host_queue.h"
#include "tcp/testing/host_queue_testing.h"

namespace nvmf_ublk::tcp {
namespace {

using ::nvmf_ublk::tcp::testing::HostQueueTest;
using ::nvmf_ublk::tcp::testing::kHostNqn;
using ::nvmf_ublk::tcp::testing::kSubNqn;
using ::nvmf_ublk::tcp::testing::Opts;
using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint32_t kAuthReqAtr = 1u << 17;  // Connect response DW0: AUTHREQ.ATR

class HostQueueAuthTest : public HostQueueTest {
 protected:
  // ICResp, then the Connect answered with AUTHREQ (`authreq`) and CNTLID 0x21.
  void ConnectAsking(HostQueue& q, bool authreq = true) {
    ASSERT_THAT(q.Start(), IsOk());
    ctrl.Pump(q);
    ctrl.IcResp();
    ctrl.Deliver(q);
    ctrl.Pump(q);
    ASSERT_EQ(ctrl.commands.size(), 1u);
    ctrl.Resp(ctrl.commands[0].sqe.cid.get(), 0, (authreq ? kAuthReqAtr : 0) | 0x21);
    ctrl.Deliver(q);
  }
  // Answers the queue's authentication commands from `auth` until it issues none.
  void Serve(HostQueue& q, auth::DhchapController& auth) {
    size_t seen = 1;
    for (int turns = 0; turns < 10; ++turns) {
      ctrl.Pump(q);
      if (ctrl.commands.size() == seen) return;
      seen = ctrl.commands.size();
      const auto& cmd = ctrl.commands.back();
      const uint8_t* raw = reinterpret_cast<const uint8_t*>(&cmd.sqe);
      ASSERT_EQ(raw[0], nvme::kFabricsOpcode);
      EXPECT_EQ(raw[43], auth::kSecpAuth);
      EXPECT_EQ(raw[41], 1);
      EXPECT_EQ(raw[42], 1);
      EXPECT_EQ(q.Submit(nvme::BuildKeepAlive(), nullptr, 0, 1), -ENOTCONN);  // not live yet
      const uint16_t cid = cmd.sqe.cid.get();
      if (raw[4] == static_cast<uint8_t>(nvme::FabricsType::kAuthSend)) {
        EXPECT_EQ(LoadLe32(raw + 44), cmd.data.size());  // TL
        auth.OnSend(cmd.data);
        ctrl.Resp(cid);
      } else {
        ASSERT_EQ(raw[4], static_cast<uint8_t>(nvme::FabricsType::kAuthReceive));
        EXPECT_EQ(LoadLe32(raw + 44), auth::DhchapHost::kReceiveSize);  // AL
        std::optional<auth::Bytes> m = auth.OnReceive();
        if (m) {
          // Only the message, not the whole allocation length (SPDK's way); nvmet pads.
          ctrl.C2H(cid, 0, *m, kFlagLastPdu);
          ctrl.Resp(cid);
        } else {
          ctrl.Resp(cid, nvme::MakeStatus(nvme::kSctGeneric, nvme::kScInvalidField, true));
        }
      }
      ctrl.Deliver(q);
    }
  }
};

std::shared_ptr<auth::DhchapControllerConfig> CtrlConfig(const auth::DhchapHostConfig& h) {
  auto c = std::make_shared<auth::DhchapControllerConfig>();
  c->host_key = h.host_key;
  c->ctrl_key = h.ctrl_key;
  c->dhgroups = {auth::DhGroup::kFfdhe2048};
  c->hashes = {auth::HashId::kSha384};
  return c;
}

TEST_F(HostQueueAuthTest, AuthenticatesBidirectionallyThenGoesLive) {
  auto hc = std::make_shared<auth::DhchapHostConfig>();
  hc->host_key = auth::DhchapKey(auth::HashId::kSha256, auth::Bytes(32, 7));
  hc->ctrl_key = auth::DhchapKey(auth::HashId::kNone, auth::Bytes(48, 9));
  HostQueueOptions o = Opts(0);
  o.dhchap = hc;
  o.auth_transaction = 5;
  HostQueue q(o, &obs);
  ConnectAsking(q);
  EXPECT_EQ(q.state(), HostQueue::State::kAuthenticating);
  auth::DhchapController ctrl_auth(CtrlConfig(*hc), kHostNqn, kSubNqn);
  Serve(q, ctrl_auth);
  EXPECT_TRUE(ctrl_auth.authenticated()) << ctrl_auth.failure();
  ASSERT_TRUE(q.live()) << obs.failure;
  EXPECT_EQ(obs.live_cntlid, 0x21);
  // Negotiate, Challenge, Reply, Success1, Success2 after the Connect.
  EXPECT_EQ(ctrl.commands.size(), 6u);
  EXPECT_EQ(LoadLe16(ctrl.commands[1].data.data() + 4), 5);  // T_ID
  EXPECT_TRUE(obs.done.empty());                             // internal commands
  EXPECT_GE(q.Submit(nvme::BuildKeepAlive(), nullptr, 0, 1), 0);
}

TEST_F(HostQueueAuthTest, WrongSecretFailsTheQueueClearly) {
  auto hc = std::make_shared<auth::DhchapHostConfig>();
  hc->host_key = auth::DhchapKey(auth::HashId::kNone, auth::Bytes(32, 7));
  HostQueueOptions o = Opts(0);
  o.dhchap = hc;
  HostQueue q(o, &obs);
  ConnectAsking(q);
  auto cc = CtrlConfig(*hc);
  cc->host_key = auth::DhchapKey(auth::HashId::kNone, auth::Bytes(32, 8));
  auth::DhchapController ctrl_auth(cc, kHostNqn, kSubNqn);
  Serve(q, ctrl_auth);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  EXPECT_THAT(obs.failure, StatusIs(absl::StatusCode::kUnauthenticated,
                                    HasSubstr("rejected the host's response")));
  EXPECT_FALSE(obs.live_cntlid.has_value());
}

TEST_F(HostQueueAuthTest, RequiredWithoutAKeyNamesTheFlag) {
  HostQueue q(Opts(0), &obs);
  ConnectAsking(q);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  EXPECT_THAT(obs.failure,
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("--dhchap-secret")));
}

TEST_F(HostQueueAuthTest, ControllerKeyButNoAuthenticationAskedIsRefused) {
  auto hc = std::make_shared<auth::DhchapHostConfig>();
  hc->host_key = auth::DhchapKey(auth::HashId::kNone, auth::Bytes(32, 7));
  hc->ctrl_key = hc->host_key;
  HostQueueOptions o = Opts(0);
  o.dhchap = hc;
  HostQueue q(o, &obs);
  ConnectAsking(q, /*authreq=*/false);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  EXPECT_THAT(obs.failure, StatusIs(absl::StatusCode::kUnauthenticated,
                                    HasSubstr("did not ask for authentication")));
}

TEST_F(HostQueueAuthTest, HostKeyOnlyAndNoAuthenticationAskedGoesLive) {
  auto hc = std::make_shared<auth::DhchapHostConfig>();
  hc->host_key = auth::DhchapKey(auth::HashId::kNone, auth::Bytes(32, 7));
  HostQueueOptions o = Opts(0);
  o.dhchap = hc;
  HostQueue q(o, &obs);
  ConnectAsking(q, /*authreq=*/false);
  EXPECT_TRUE(q.live());
}

TEST_F(HostQueueAuthTest, AuthCommandErrorStatusFailsTheQueue) {
  auto hc = std::make_shared<auth::DhchapHostConfig>();
  hc->host_key = auth::DhchapKey(auth::HashId::kNone, auth::Bytes(32, 7));
  HostQueueOptions o = Opts(0);
  o.dhchap = hc;
  HostQueue q(o, &obs);
  ConnectAsking(q);
  ctrl.Pump(q);
  ASSERT_EQ(ctrl.commands.size(), 2u);
  ctrl.Resp(ctrl.commands[1].sqe.cid.get(),
            nvme::MakeStatus(nvme::kSctGeneric, nvme::kScInvalidField, true));
  ctrl.Deliver(q);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  EXPECT_THAT(obs.failure.message(), HasSubstr("Authentication Send"));
}

}  // namespace
}  // namespace nvmf_ublk::tcp
