#include "control/protocol.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::control {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

TEST(Protocol, ConnectArgsRoundTrip) {
  ConnectArgs a;
  a.traddr = "10.0.0.1";
  a.trsvcid = "4421";
  a.subnqn = "nqn.2026-01.io.test:a";
  a.nr_io_queues = 4;
  a.queue_size = 256;
  a.ctrl_loss_tmo = -1;
  a.hdr_digest = true;
  ASSERT_OK_AND_ASSIGN(ConnectArgs b, ConnectArgsFromJson(ToJson(a)));
  EXPECT_EQ(b.traddr, "10.0.0.1");
  EXPECT_EQ(b.trsvcid, "4421");
  EXPECT_EQ(b.nr_io_queues, 4);
  EXPECT_EQ(b.queue_size, 256);
  EXPECT_EQ(b.ctrl_loss_tmo, -1);
  EXPECT_TRUE(b.hdr_digest);
  EXPECT_FALSE(b.data_digest);
}

TEST(Protocol, ConnectArgsValidation) {
  EXPECT_THAT(ConnectArgsFromJson({{"transport", "rdma"}, {"traddr", "x"}, {"subnqn", "nqn.x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("only tcp")));
  EXPECT_THAT(ConnectArgsFromJson({{"subnqn", "nqn.x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("traddr")));
  EXPECT_THAT(ConnectArgsFromJson({{"traddr", "x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NQN")));
  EXPECT_THAT(ConnectArgsFromJson({{"traddr", "x"}, {"subnqn", "nqn.x"}, {"queue_size", 4}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("queue_size 4")));
  EXPECT_THAT(ConnectArgsFromJson({{"traddr", "x"}, {"subnqn", "nqn.x"}, {"queue_size", "big"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("bad connect request: queue_size must be an integer")));
  // Values of the wrong JSON type, or integers an int cannot hold, never throw or truncate:
  // 2^32 + 32 is not queue size 32.
  const struct {
    nlohmann::json j;
    const char* message;
  } bad[] = {
      {{{"traddr", "x"}, {"subnqn", "nqn.x"}, {"queue_size", 4294967328u}},
       "queue_size 4294967328 is out of range"},
      {{{"traddr", "x"}, {"subnqn", "nqn.x"}, {"queue_size", -4294967264}},
       "queue_size -4294967264 is out of range"},
      {{{"traddr", "x"}, {"subnqn", "nqn.x"}, {"ctrl_loss_tmo", 1e300}},
       "ctrl_loss_tmo must be an integer"},
      {{{"traddr", "x"}, {"subnqn", "nqn.x"}, {"hdr_digest", "yes"}},
       "hdr_digest must be a boolean"},
      {{{"traddr", 7}, {"subnqn", "nqn.x"}}, "traddr must be a string"},
      {{{"traddr", "x"}, {"subnqn", nlohmann::json::array()}}, "subnqn must be a string"},
      {nlohmann::json::array(), "not a JSON object"},
  };
  for (const auto& b : bad) {
    EXPECT_THAT(ConnectArgsFromJson(b.j),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(b.message)))
        << b.j.dump();
  }
  // Replies (read by the CLI): a field of the wrong type keeps its default.
  DeviceInfo d = DeviceInfoFromJson({{"path", 5}, {"nsid", "one"}, {"dev_id", 3}});
  EXPECT_EQ(d.path, "");
  EXPECT_EQ(d.nsid, 0u);
  EXPECT_EQ(d.dev_id, 3);
}

TEST(Protocol, DhchapSecretsRoundTripAndAreChecked) {
  const std::string key = "DHHC-1:01:WulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:";
  ConnectArgs a;
  a.traddr = "x";
  a.subnqn = "nqn.x";
  a.dhchap_secret = key;
  a.dhchap_ctrl_secret = key;
  ASSERT_OK_AND_ASSIGN(ConnectArgs b, ConnectArgsFromJson(ToJson(a)));
  EXPECT_EQ(b.dhchap_secret, key);
  EXPECT_EQ(b.dhchap_ctrl_secret, key);
  ASSERT_OK_AND_ASSIGN(auto config, DhchapConfigFor(b));
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->host_key.transform, auth::HashId::kSha256);
  EXPECT_TRUE(config->ctrl_key.has_value());
  a.dhchap_secret.clear();
  ASSERT_OK_AND_ASSIGN(auto none, DhchapConfigFor(ConnectArgs{}));
  EXPECT_EQ(none, nullptr);

  EXPECT_THAT(ConnectArgsFromJson(ToJson(a)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--dhchap-ctrl-secret needs --dhchap-secret")));
  a.dhchap_secret = "DHHC-1:01:XulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:";
  auto bad = ConnectArgsFromJson(ToJson(a));
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            HasSubstr("--dhchap-secret: bad DH-HMAC-CHAP key: its CRC")));
  EXPECT_THAT(bad.status().message(), ::testing::Not(HasSubstr("XulleCBk")));
}

TEST(Protocol, ErrorReplyRoundTrip) {
  nlohmann::json r = ErrorReply(absl::UnavailableError("target unreachable"));
  EXPECT_EQ(r["ok"], false);
  EXPECT_THAT(ReplyStatus(r), StatusIs(absl::StatusCode::kUnavailable, "target unreachable"));
  EXPECT_THAT(ReplyStatus(nlohmann::json{{"ok", true}}), IsOk());
  EXPECT_THAT(ReplyStatus(nlohmann::json::array()), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(Protocol, DevicesAndControllersRoundTrip) {
  ControllerSummary c;
  c.name = "nvmf0";
  c.state = "live";
  c.devices.push_back(DeviceInfo{"/dev/ublkb3", 3, 1, 1 << 30, 4096, "nguid.00", "nqn.x", "nvmf0"});
  ControllerSummary d = ControllerSummaryFromJson(ToJson(c));
  EXPECT_EQ(d.name, "nvmf0");
  ASSERT_EQ(d.devices.size(), 1u);
  EXPECT_EQ(d.devices[0].path, "/dev/ublkb3");
  EXPECT_EQ(d.devices[0].logical_block, 4096u);
  EXPECT_EQ(d.devices[0].size_bytes, 1u << 30);
}

TEST(Protocol, ParseObjectRejectsGarbage) {
  EXPECT_THAT(ParseObject("{not json"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseObject("[1,2]"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseObject("{\"cmd\":\"list\"}"), IsOk());
}

TEST(ControlClient, DaemonNotRunningIsAClearError) {
  EXPECT_THAT(ControlClient::Open("/tmp/nvmf-ublk-test-no-such.sock"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("nvmf-ublkd is not running")));
}

TEST(ControlClient, RoundTripOverASocket) {
  const std::string path = "/tmp/nvmf-ublk-test-" + std::to_string(getpid()) + ".sock";
  unlink(path.c_str());
  int lfd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(lfd, 1), 0);
  std::thread server([&] {
    int fd = ::accept(lfd, nullptr, nullptr);
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    std::string req(buf, static_cast<size_t>(n));
    EXPECT_THAT(req, HasSubstr("\"cmd\":\"disconnect\""));
    std::string reply = R"({"ok":true,"devices":[{"path":"/dev/ublkb0","nsid":1}]})"
                        "\n"
                        R"({"ok":false,"code":"NOT_FOUND","error":"no such device"})"
                        "\n";
    ::send(fd, reply.data(), reply.size(), 0);
    n = ::recv(fd, buf, sizeof(buf), 0);
    ::close(fd);
  });
  ASSERT_OK_AND_ASSIGN(ControlClient c, ControlClient::Open(path));
  ASSERT_OK_AND_ASSIGN(auto removed, c.DisconnectSubsystem("nqn.x"));
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].path, "/dev/ublkb0");
  // The second reply was already buffered: it answers the next call.
  EXPECT_THAT(c.DisconnectDevice("/dev/ublkb9"),
              StatusIs(absl::StatusCode::kNotFound, "no such device"));
  server.join();
  ::close(lfd);
  unlink(path.c_str());
}

}  // namespace
}  // namespace nvmf_ublk::control
