// The daemon's request handling without a kernel ublk driver (as on this build machine): every
// error is one clear message and leaves no controller or device behind. The full path with the real
// ublk_drv is tests/guest/t_daemon_*.sh.
#include "daemon/daemon.h"

#include <unistd.h>

#include <fstream>

#include "base/testing/status_matchers.h"
#include "control/protocol.h"
#include "discovery/host_identity.h"
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

TEST_F(DaemonTest, ConnectAllWithoutUblkOrWithBadArgumentsIsAClearError) {
  json r = daemon_->Handle(json{{"cmd", "connect-all"},
                                {"traddr", "127.0.0.1"},
                                {"trsvcid", std::to_string(port_)},
                                {"persistent", true}});
  EXPECT_THAT(control::ReplyStatus(r),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("modprobe ublk_drv")));
  EXPECT_EQ(target_->LiveControllers(), 0u);
  r = daemon_->Handle(json{{"cmd", "connect-all"}, {"traddr", "127.0.0.1"}, {"grace_s", -5}});
  EXPECT_THAT(control::ReplyStatus(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("grace_s -5 is out of range")));
  r = daemon_->Handle(json{{"cmd", "connect-all"}, {"traddr", "127.0.0.1"}, {"persistent", 1}});
  EXPECT_THAT(control::ReplyStatus(r), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("persistent must be a boolean")));
  r = daemon_->Handle(json{{"cmd", "list"}});
  ASSERT_TRUE(r["discovery"].is_array());
  EXPECT_TRUE(r["discovery"].empty());  // nothing half-made
  r = daemon_->Handle(json{{"cmd", "disconnect-all"}, {"owner", 3}});
  EXPECT_THAT(control::ReplyStatus(r), StatusIs(absl::StatusCode::kInvalidArgument));
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
  // Fields of the wrong JSON type are error replies (they used to throw out of the control
  // thread and abort the daemon).
  EXPECT_THAT(control::ReplyStatus(daemon_->Handle(json{{"cmd", 5}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'cmd' must be a string")));
  EXPECT_THAT(control::ReplyStatus(daemon_->Handle(json{{"cmd", "disconnect"}, {"subnqn", 7}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'subnqn' must be a string")));
  EXPECT_THAT(
      control::ReplyStatus(daemon_->Handle(json{{"cmd", "disconnect"}, {"device", json::array()}})),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'device' must be a string")));
  EXPECT_THAT(control::ReplyStatus(daemon_->Handle(json::array())),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
  EXPECT_THAT(
      control::ReplyStatus(daemon_->Handle(
          json{{"cmd", "connect"}, {"traddr", "x"}, {"subnqn", "nqn.x"}, {"queue_size", 1.5}})),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("queue_size must be an integer")));
  json list = daemon_->Handle(json{{"cmd", "list"}});
  EXPECT_EQ(list["ok"], true);
  EXPECT_TRUE(list["controllers"].empty());
}

// A connection of the state file whose target does not answer (yet): its device is listed as
// recovering; a hand-over is quick, refuses later requests and leaves the state file as it was
// (the next daemon recovers the device).
TEST_F(DaemonTest, HandOverKeepsTheStateAndTheRecoveringDevice) {
  State st;
  ConnectionRecord rec;
  rec.args.traddr = "127.0.0.1";
  rec.args.trsvcid = "1";  // nothing listens
  rec.args.subnqn = kNqn;
  rec.args.hostnqn = "nqn.2026-01.io.nvmf-ublk:test-host";
  rec.args.hostid = "12345678-1234-1234-1234-123456789abc";
  rec.args.reconnect_delay = 1;
  rec.args.ctrl_loss_tmo = 600;
  rec.devices.push_back(DeviceRecord{1, 7, "nguid.00112233445566778899aabbccddeeff"});
  st.connections.push_back(rec);
  ASSERT_THAT(SaveState(daemon_->state_path(), st), ::nvmf_ublk::testing::IsOk());
  std::ifstream in(daemon_->state_path());
  const std::string before((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  daemon_->StartRecovery(st);
  json list = daemon_->Handle(json{{"cmd", "list"}});
  ASSERT_EQ(list["controllers"].size(), 1u);
  ASSERT_EQ(list["controllers"][0]["devices"].size(), 1u);
  EXPECT_EQ(list["controllers"][0]["devices"][0]["path"], "/dev/ublkb7");
  EXPECT_EQ(list["controllers"][0]["devices"][0]["state"], "recovering");
  EXPECT_EQ(daemon_->Counts().recovering, 1);

  const HandOverSummary sum = daemon_->HandOver(5'000'000'000);
  EXPECT_LT(sum.elapsed_ns, 2'000'000'000);
  EXPECT_EQ(sum.devices, 0);  // none was live
  EXPECT_THAT(control::ReplyStatus(Connect(kNqn, port_)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("stopping")));
  EXPECT_THAT(control::ReplyStatus(daemon_->Handle(json{{"cmd", "disconnect"}, {"subnqn", kNqn}})),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("stopping")));
  daemon_.reset();  // joins the recovery thread: it gives up without touching the device
  std::ifstream after_in(state_dir_ + "/state.json");
  const std::string after((std::istreambuf_iterator<char>(after_in)),
                          std::istreambuf_iterator<char>());
  EXPECT_EQ(after, before);
}

// A damaged host ID in the state file is not sent as zeros (another host, to the target): the
// recovery connects with this host's identity and says so.
TEST_F(DaemonTest, StateFileHostIdThatIsNotAUuidIsReplacedNotZeroed) {
  State st;
  ConnectionRecord rec;
  rec.args.traddr = "127.0.0.1";
  rec.args.trsvcid = std::to_string(port_);
  rec.args.subnqn = kNqn;
  rec.args.hostnqn = "nqn.2014-08.org.nvmexpress:uuid:0e4a1c00-0000-4000-8000-0000000000aa";
  rec.args.hostid = "not-a-uuid";
  rec.args.reconnect_delay = 1;
  rec.args.ctrl_loss_tmo = 600;
  rec.devices.push_back(DeviceRecord{1, 7, ""});
  st.connections.push_back(rec);
  daemon_->StartRecovery(st);
  auto expected = discovery::ResolveHostIdentity(rec.args.hostnqn, "");
  ASSERT_TRUE(expected.ok()) << expected.status();
  for (int i = 0; i < 500 && target_->LastConnectHostId().empty(); ++i) usleep(10'000);
  EXPECT_EQ(target_->LastConnectHostId(), expected->hostid);
  EXPECT_NE(target_->LastConnectHostId(), "00000000-0000-0000-0000-000000000000");
}

TEST_F(DaemonTest, ReactorsAnswerTheWatchdogProbe) {
  EXPECT_TRUE(daemon_->ReactorsResponsive(2'000'000'000));
}

}  // namespace
}  // namespace nvmf_ublk::daemon
