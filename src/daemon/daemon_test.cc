// The daemon's request handling without a kernel ublk driver (as on this build machine): every
// error is one clear message and leaves no controller or device behind. The full path with the real
// ublk_drv is tests/guest/t_daemon_*.sh.
#include "daemon/daemon.h"

#include <unistd.h>

#include "base/testing/status_matchers.h"
#include "control/protocol.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "target.h"  // tools/nvmf-target

namespace nvmf_ublk::daemon {
namespace {

using nlohmann::json;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kNqn[] = "nqn.2026-01.io.nvmf-ublk:daemon-test";

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target::TargetConfig cfg;
    cfg.ports.push_back(target::PortConfig{});
    target::SubsystemConfig sub;
    sub.nqn = kNqn;
    target::NamespaceConfig ns;
    ns.size_bytes = 8 << 20;
    sub.namespaces.push_back(ns);
    cfg.subsystems.push_back(sub);
    target_ = std::make_unique<target::Target>(cfg);
    auto ports = target_->Start();
    ASSERT_TRUE(ports.ok()) << ports.status();
    port_ = (*ports)[0];
    state_dir_ = "/tmp/nvmf-ublkd-test-" + std::to_string(getpid());
    mkdir(state_dir_.c_str(), 0700);
    DaemonOptions o;
    o.state_dir = state_dir_;
    o.reactors = 1;
    o.ublk_control = "/nonexistent/ublk-control";  // a kernel without ublk_drv
    auto d = Daemon::Create(o);
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::move(*d);
  }
  void TearDown() override {
    daemon_.reset();
    unlink((state_dir_ + "/state.json").c_str());
    rmdir(state_dir_.c_str());
  }
  json Connect(const std::string& nqn, uint16_t port) {
    return daemon_->Handle(json{{"cmd", "connect"},
                                {"traddr", "127.0.0.1"},
                                {"trsvcid", std::to_string(port)},
                                {"subnqn", nqn},
                                {"hostnqn", "nqn.2026-01.io.nvmf-ublk:test-host"},
                                {"hostid", "12345678-1234-1234-1234-123456789abc"}});
  }
  size_t Controllers() { return daemon_->Handle(json{{"cmd", "list"}})["controllers"].size(); }

  std::unique_ptr<target::Target> target_;
  uint16_t port_ = 0;
  std::string state_dir_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(DaemonTest, NoUblkDriverIsAClearErrorAndConnectsNothing) {
  json r = Connect(kNqn, port_);
  EXPECT_THAT(control::ReplyStatus(r),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("modprobe ublk_drv")));
  EXPECT_EQ(Controllers(), 0u);
  EXPECT_EQ(target_->LiveControllers(), 0u);
}

TEST_F(DaemonTest, RequestErrors) {
  EXPECT_THAT(control::ReplyStatus(daemon_->Handle(json{{"cmd", "frobnicate"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown command")));
  EXPECT_THAT(control::ReplyStatus(daemon_->Handle(json{{"cmd", "connect"}, {"traddr", "x"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NQN")));
  EXPECT_THAT(control::ReplyStatus(daemon_->Handle(json{{"cmd", "disconnect"}, {"subnqn", kNqn}})),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no connection")));
  EXPECT_THAT(
      control::ReplyStatus(daemon_->Handle(json{{"cmd", "disconnect"}, {"device", "/dev/ublkb9"}})),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("not an nvmf-ublk device")));
  EXPECT_THAT(control::ReplyStatus(daemon_->Handle(json{{"cmd", "disconnect"}})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  json list = daemon_->Handle(json{{"cmd", "list"}});
  EXPECT_EQ(list["ok"], true);
  EXPECT_TRUE(list["controllers"].empty());
}

TEST_F(DaemonTest, ShutdownWritesAnEmptyState) {
  daemon_->Shutdown();
  ASSERT_OK_AND_ASSIGN(State s, LoadState(daemon_->state_path()));
  EXPECT_TRUE(s.connections.empty());
}

}  // namespace
}  // namespace nvmf_ublk::daemon
