// The DH-HMAC-CHAP exchange: host against controller for every hash and group, one and both
// directions, wrong keys, and a controller that sends malformed or hostile messages. The
// response value is also checked against one computed independently (Python's hmac module, the
// formula of Base 2.0 §8.13.5.4) so the two roles cannot agree on a shared mistake.
#include "auth/dhchap.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "auth/dhchap_messages.h"
#include "base/endian.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::auth {
namespace {

using ::testing::HasSubstr;

constexpr char kHost[] = "nqn.2014-08.org.nvmexpress:uuid:host";
constexpr char kSub[] = "nqn.2026-01.io.nvmf-ublk:sub";

DhchapKey Key(HashId t, uint8_t fill, size_t len = 32) { return DhchapKey(t, Bytes(len, fill)); }

struct Pair {
  std::shared_ptr<DhchapHostConfig> hc = std::make_shared<DhchapHostConfig>();
  std::shared_ptr<DhchapControllerConfig> cc = std::make_shared<DhchapControllerConfig>();
};

// Runs the exchange to its end; returns the host's result.
absl::Status Exchange(DhchapHost& host, DhchapController& ctrl) {
  for (int turns = 0; turns < 16; ++turns) {
    if (host.sending()) {
      ctrl.OnSend(host.outgoing());
      host.OnSent();
    } else if (host.step() == DhchapHost::Step::kReceiveChallenge ||
               host.step() == DhchapHost::Step::kReceiveSuccess1) {
      std::optional<Bytes> m = ctrl.OnReceive();
      if (!m) {
        host.OnCommandFailed(absl::UnavailableError("command failed"));
      } else {
        host.OnReceived(*m);
      }
    } else {
      break;
    }
  }
  return host.result();
}

TEST(Dhchap, EveryHashAndGroupBothDirections) {
  for (HashId hash : {HashId::kSha256, HashId::kSha384, HashId::kSha512}) {
    for (DhGroup group : {DhGroup::kNull, DhGroup::kFfdhe2048, DhGroup::kFfdhe3072,
                          DhGroup::kFfdhe4096, DhGroup::kFfdhe6144, DhGroup::kFfdhe8192}) {
      for (bool bidi : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << ToString(hash) << " " << ToString(group) << " " << bidi);
        Pair p;
        p.hc->host_key = Key(HashId::kSha256, 0x11);
        p.cc->host_key = p.hc->host_key;
        if (bidi) {
          p.hc->ctrl_key = Key(HashId::kSha512, 0x22, 64);
          p.cc->ctrl_key = p.hc->ctrl_key;
        }
        p.cc->hashes = {hash};
        p.cc->dhgroups = {group};
        DhchapHost host(p.hc, kHost, kSub, 3);
        DhchapController ctrl(p.cc, kHost, kSub);
        EXPECT_THAT(Exchange(host, ctrl), ::nvmf_ublk::testing::IsOk());
        EXPECT_EQ(host.step(), DhchapHost::Step::kDone);
        EXPECT_TRUE(ctrl.authenticated()) << ctrl.failure();
        EXPECT_EQ(host.hash(), hash);
        EXPECT_EQ(host.dhgroup(), group);
      }
    }
  }
}

TEST(Dhchap, WrongHostKeyIsRejectedByTheController) {
  Pair p;
  p.hc->host_key = Key(HashId::kNone, 0x11);
  p.cc->host_key = Key(HashId::kNone, 0x12);
  DhchapHost host(p.hc, kHost, kSub, 1);
  DhchapController ctrl(p.cc, kHost, kSub);
  absl::Status s = Exchange(host, ctrl);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(s.message(), HasSubstr("rejected the host's response"));
  EXPECT_FALSE(ctrl.authenticated());
}

TEST(Dhchap, SameSecretUnderAnotherHostNqnFails) {
  // The transformed key binds the secret to the host NQN.
  Pair p;
  p.hc->host_key = Key(HashId::kSha256, 0x11);
  p.cc->host_key = p.hc->host_key;
  DhchapHost host(p.hc, "nqn.2014-08.org.nvmexpress:uuid:other", kSub, 1);
  DhchapController ctrl(p.cc, "nqn.2014-08.org.nvmexpress:uuid:other", kSub);
  ASSERT_THAT(Exchange(host, ctrl), ::nvmf_ublk::testing::IsOk());
  DhchapHost host2(p.hc, kHost, kSub, 1);
  DhchapController ctrl2(p.cc, "nqn.2014-08.org.nvmexpress:uuid:other", kSub);
  EXPECT_EQ(Exchange(host2, ctrl2).code(), absl::StatusCode::kUnauthenticated);
}

TEST(Dhchap, ControllerWithTheWrongKeyFailsBidirectional) {
  Pair p;
  p.hc->host_key = Key(HashId::kNone, 0x11);
  p.cc->host_key = p.hc->host_key;
  p.hc->ctrl_key = Key(HashId::kNone, 0x22);
  p.cc->ctrl_key = Key(HashId::kNone, 0x23);
  DhchapHost host(p.hc, kHost, kSub, 1);
  DhchapController ctrl(p.cc, kHost, kSub);
  absl::Status s = Exchange(host, ctrl);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(s.message(), HasSubstr("controller failed to authenticate itself"));
  // The host told the controller (Failure2), and the controller did not count it as done.
  EXPECT_EQ(ctrl.step(), DhchapController::Step::kFailed);
}

TEST(Dhchap, NoCommonHashOrGroupIsNamed) {
  Pair p;
  p.hc->host_key = Key(HashId::kNone, 0x11);
  p.cc->host_key = p.hc->host_key;
  p.hc->hashes = {HashId::kSha256};
  p.cc->hashes = {HashId::kSha512};
  DhchapHost host(p.hc, kHost, kSub, 1);
  DhchapController ctrl(p.cc, kHost, kSub);
  absl::Status s = Exchange(host, ctrl);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("none of the hash functions"));

  Pair q;
  q.hc->host_key = Key(HashId::kNone, 0x11);
  q.cc->host_key = q.hc->host_key;
  q.hc->dhgroups = {DhGroup::kNull};
  q.cc->dhgroups = {DhGroup::kFfdhe4096};
  DhchapHost host2(q.hc, kHost, kSub, 1);
  DhchapController ctrl2(q.cc, kHost, kSub);
  EXPECT_THAT(Exchange(host2, ctrl2).message(), HasSubstr("none of the DH groups"));
}

Bytes Challenge(uint16_t tid, HashId hash, DhGroup group, ByteView c1, uint32_t s1,
                ByteView dhv = {}) {
  Bytes b(sizeof(ChallengeMsg) + c1.size() + dhv.size(), 0);
  auto* c = reinterpret_cast<ChallengeMsg*>(b.data());
  c->h.auth_type = kAuthTypeDhchap;
  c->h.auth_id = kMsgChallenge;
  c->h.t_id.set(tid);
  c->hl = static_cast<uint8_t>(c1.size());
  c->hashid = static_cast<uint8_t>(hash);
  c->dhgid = static_cast<uint8_t>(group);
  c->dhvlen.set(static_cast<uint16_t>(dhv.size()));
  c->seqnum.set(s1);
  std::memcpy(b.data() + sizeof(ChallengeMsg), c1.data(), c1.size());
  if (!dhv.empty())
    std::memcpy(b.data() + sizeof(ChallengeMsg) + c1.size(), dhv.data(), dhv.size());
  return b;
}

std::string Hex(ByteView b) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

TEST(Dhchap, ReplyMatchesAnIndependentComputation) {
  auto hc = std::make_shared<DhchapHostConfig>();
  Bytes s(32);
  for (int i = 0; i < 32; ++i) s[i] = static_cast<uint8_t>(i);
  hc->host_key = DhchapKey(HashId::kSha256, s);
  DhchapHost host(hc, kHost, kSub, 7);
  // The Negotiate the kernel host sends: all three hashes, the null group and the five FFDHE.
  const auto* n = reinterpret_cast<const NegotiateMsg*>(host.outgoing().data());
  EXPECT_EQ(host.outgoing().size(), 72u);
  EXPECT_EQ(n->h.t_id.get(), 7);
  EXPECT_EQ(n->napd, 1);
  EXPECT_EQ(n->desc[0].authid, 1);
  EXPECT_EQ(n->desc[0].halen, 3);
  EXPECT_EQ(n->desc[0].dhlen, 6);
  EXPECT_EQ(n->desc[0].idlist[2], 3);
  EXPECT_EQ(n->desc[0].idlist[35], 5);
  host.OnSent();
  Bytes c1(32);
  for (int i = 0; i < 32; ++i) c1[i] = static_cast<uint8_t>(0xA0 + i);
  host.OnReceived(Challenge(7, HashId::kSha256, DhGroup::kNull, c1, 0x01020304));
  ASSERT_EQ(host.step(), DhchapHost::Step::kSendReply);
  const Bytes& r = host.outgoing();
  ASSERT_EQ(r.size(), sizeof(ReplyMsg) + 64);
  EXPECT_EQ(Hex(ByteView(r).subspan(sizeof(ReplyMsg), 32)),
            "5978cdcb98c83f85d015556b1adf084ee8c5c29bcacc64913dded2a3004d699c");
  const auto* rm = reinterpret_cast<const ReplyMsg*>(r.data());
  EXPECT_EQ(rm->cvalid, 0);
  EXPECT_EQ(rm->seqnum.get(), 0u);
  EXPECT_EQ(rm->dhvlen.get(), 0);

  // SHA-384, an untransformed 48-byte secret.
  auto hc2 = std::make_shared<DhchapHostConfig>();
  Bytes s48(48);
  for (int i = 0; i < 48; ++i) s48[i] = static_cast<uint8_t>(i);
  hc2->host_key = DhchapKey(HashId::kNone, s48);
  DhchapHost host2(hc2, kHost, kSub, 9);
  host2.OnSent();
  Bytes c1b(48);
  for (int i = 0; i < 48; ++i) c1b[i] = static_cast<uint8_t>(100 + i);
  host2.OnReceived(Challenge(9, HashId::kSha384, DhGroup::kNull, c1b, 5));
  ASSERT_EQ(host2.step(), DhchapHost::Step::kSendReply);
  EXPECT_EQ(Hex(ByteView(host2.outgoing()).subspan(sizeof(ReplyMsg), 48)),
            "1ced8d81a27720a22a642116699cea70fc5220b3052118a52335095b4133082a5551d3e16eb08e009c91dc"
            "46686456c4");
}

// A hostile controller: every malformed Challenge fails the exchange with a Failure2 (or at
// once), never a crash or a reply.
TEST(Dhchap, MalformedChallengesFail) {
  auto hc = std::make_shared<DhchapHostConfig>();
  hc->host_key = Key(HashId::kNone, 0x11);
  Bytes c1(32, 0x5A);
  Bytes p_minus_1(256, 0xFF);
  p_minus_1.back() = 0xFE;  // ffdhe2048's p ends in ...FFFF; p-1 is not a valid public value
  Bytes one(256, 0);
  one.back() = 1;
  struct Case {
    const char* name;
    Bytes msg;
    const char* want;
  } cases[] = {
      {"short", Bytes(3, 0), "too short"},
      {"wrong tid", Challenge(2, HashId::kSha256, DhGroup::kNull, c1, 1), "transaction 2"},
      {"unknown hash", Challenge(1, static_cast<HashId>(9), DhGroup::kNull, c1, 1),
       "did not offer"},
      {"hl mismatch", Challenge(1, HashId::kSha512, DhGroup::kNull, c1, 1), "does not match"},
      {"unknown group", Challenge(1, HashId::kSha256, static_cast<DhGroup>(7), c1, 1),
       "did not offer"},
      {"null group with a value", Challenge(1, HashId::kSha256, DhGroup::kNull, c1, 1, one),
       "DH value of 256 bytes"},
      {"group without a value", Challenge(1, HashId::kSha256, DhGroup::kFfdhe2048, c1, 1),
       "DH value of 0 bytes"},
      {"dh value 1", Challenge(1, HashId::kSha256, DhGroup::kFfdhe2048, c1, 1, one),
       "not a valid ffdhe2048"},
      {"dh value p-1", Challenge(1, HashId::kSha256, DhGroup::kFfdhe2048, c1, 1, p_minus_1),
       "not a valid ffdhe2048"},
      {"success1 instead", Bytes{1, 3, 0, 0, 1, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0},
       "got message type 01/03"},
  };
  for (Case& c : cases) {
    SCOPED_TRACE(c.name);
    DhchapHost host(hc, kHost, kSub, 1);
    host.OnSent();
    host.OnReceived(c.msg);
    if (host.step() == DhchapHost::Step::kSendFailure2) {
      const auto* f = reinterpret_cast<const FailureMsg*>(host.outgoing().data());
      EXPECT_EQ(f->h.auth_id, kMsgFailure2);
      EXPECT_EQ(f->rescode, 1);
      host.OnSent();
    }
    EXPECT_EQ(host.step(), DhchapHost::Step::kFailed);
    EXPECT_THAT(host.result().message(), HasSubstr(c.want));
  }
  // Truncated: the header claims more than arrived.
  DhchapHost host(hc, kHost, kSub, 1);
  host.OnSent();
  Bytes m = Challenge(1, HashId::kSha256, DhGroup::kNull, c1, 1);
  m.resize(m.size() - 1);
  host.OnReceived(m);
  EXPECT_EQ(host.step(), DhchapHost::Step::kSendFailure2);
}

TEST(Dhchap, BidirectionalNeedsTheControllersAnswer) {
  // A controller that answers Success1 without R2 cannot pass as authenticated.
  Pair p;
  p.hc->host_key = Key(HashId::kNone, 0x11);
  p.hc->ctrl_key = Key(HashId::kNone, 0x22);
  DhchapHost host(p.hc, kHost, kSub, 4);
  host.OnSent();
  host.OnReceived(Challenge(4, HashId::kSha256, DhGroup::kNull, Bytes(32, 1), 1));
  ASSERT_EQ(host.step(), DhchapHost::Step::kSendReply);
  host.OnSent();
  Bytes s1(sizeof(Success1Msg), 0);
  auto* m = reinterpret_cast<Success1Msg*>(s1.data());
  m->h.auth_type = kAuthTypeDhchap;
  m->h.auth_id = kMsgSuccess1;
  m->h.t_id.set(4);
  m->hl = 32;
  host.OnReceived(s1);
  ASSERT_EQ(host.step(), DhchapHost::Step::kSendFailure2);
  host.OnSent();
  EXPECT_THAT(host.result().message(), HasSubstr("did not answer the host's challenge"));
}

TEST(Dhchap, CommandFailureEndsTheExchange) {
  auto hc = std::make_shared<DhchapHostConfig>();
  hc->host_key = Key(HashId::kNone, 0x11);
  DhchapHost host(hc, kHost, kSub, 1);
  host.OnCommandFailed(absl::UnavailableError("Authentication Send failed: Invalid Field"));
  EXPECT_EQ(host.step(), DhchapHost::Step::kFailed);
  EXPECT_THAT(host.result().message(), HasSubstr("Invalid Field"));
}

}  // namespace
}  // namespace nvmf_ublk::auth
