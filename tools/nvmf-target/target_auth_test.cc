// In-band authentication on the target: a host configured with --host-key must pass DH-HMAC-CHAP
// on every queue before its commands run; the project's host (tcp::HostQueue) authenticates.
#include "auth/dhchap_key.h"
#include "nvme/status.h"
#include "testing/target_fixture.h"

namespace nvmf_ublk::target {
namespace {

using ::nvmf_ublk::testing::IsOk;
using testing::BaseConfig;
using testing::ConnectSession;
using ::testing::HasSubstr;
using testing::kHostNqn;
using testing::kNqn;
using testing::Pattern;
using testing::QueueOptions;
using testing::Session;
using testing::TargetTest;

std::string NewKey(int hmac) {
  auto k = auth::GenerateDhchapKey(
      static_cast<auth::HashId>(hmac),
      hmac == 0 ? 32 : auth::HashLength(static_cast<auth::HashId>(hmac)), {}, kHostNqn);
  EXPECT_THAT(k, IsOk());
  return auth::FormatDhchapKey(*k);
}

tcp::HostQueueOptions WithKeys(const std::string& key, const std::string& ctrl_key = "") {
  tcp::HostQueueOptions o = QueueOptions(kNqn);
  auto c = std::make_shared<auth::DhchapHostConfig>();
  c->host_key = *auth::ParseDhchapKey(key);
  if (!ctrl_key.empty()) c->ctrl_key = *auth::ParseDhchapKey(ctrl_key);
  o.dhchap = c;
  return o;
}

class TargetAuthTest : public TargetTest {
 protected:
  void StartWith(HostAuthConfig h) {
    TargetConfig c = BaseConfig();
    h.hostnqn = kHostNqn;
    c.subsystems[0].host_auth.push_back(std::move(h));
    Start(c);
  }
};

TEST_F(TargetAuthTest, EveryQueueAuthenticatesThenIoWorks) {
  const std::string key = NewKey(1), ctrl_key = NewKey(3);
  StartWith(HostAuthConfig{"", key, ctrl_key, {2}, {1}});  // SHA-384, ffdhe2048
  auto s = ConnectSession(ports_[0], kNqn, 2, WithKeys(key, ctrl_key));
  ASSERT_THAT(s, IsOk());
  std::vector<uint8_t> data = Pattern(4096, 9), back(4096);
  EXPECT_TRUE(Run(*s->io[1], nvme::BuildWrite(1, 0, 8, false), data.data(), 4096).ok());
  EXPECT_TRUE(Run(s->io0(), nvme::BuildRead(1, 0, 8), back.data(), 4096).ok());
  EXPECT_EQ(back, data);
}

TEST_F(TargetAuthTest, WrongOrMissingSecretsAreRefusedClearly) {
  const std::string key = NewKey(0), ctrl_key = NewKey(2);
  StartWith(HostAuthConfig{"", key, ctrl_key, {}, {}});
  auto wrong = ConnectSession(ports_[0], kNqn, 1, WithKeys(NewKey(0)));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(wrong.status().message(), HasSubstr("rejected the host's response"));

  auto none = ConnectSession(ports_[0], kNqn, 1);
  EXPECT_THAT(none.status().message(), HasSubstr("requires in-band authentication"));

  auto bad_ctrl = ConnectSession(ports_[0], kNqn, 1, WithKeys(key, NewKey(2)));
  EXPECT_EQ(bad_ctrl.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(bad_ctrl.status().message(), HasSubstr("failed to authenticate itself"));

  EXPECT_THAT(ConnectSession(ports_[0], kNqn, 1, WithKeys(key, ctrl_key)), IsOk());
}

TEST_F(TargetAuthTest, NoCommonHashIsNamed) {
  const std::string key = NewKey(0);
  StartWith(HostAuthConfig{"", key, "", {3}, {}});  // SHA-512 only
  tcp::HostQueueOptions o = WithKeys(key);
  auto c = std::make_shared<auth::DhchapHostConfig>(*o.dhchap);
  c->hashes = {auth::HashId::kSha256};
  o.dhchap = c;
  auto s = ConnectSession(ports_[0], kNqn, 1, o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("none of the hash functions"));
}

TEST_F(TargetAuthTest, BadKeyInConfigurationIsRefusedAtStart) {
  TargetConfig c = BaseConfig();
  c.subsystems[0].host_auth.push_back(HostAuthConfig{kHostNqn, "DHHC-1:00:abcd:", "", {}, {}});
  target_ = std::make_unique<Target>(c);
  auto ports = target_->Start();
  EXPECT_EQ(ports.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ports.status().message(), HasSubstr("key of host"));
}

}  // namespace
}  // namespace nvmf_ublk::target
