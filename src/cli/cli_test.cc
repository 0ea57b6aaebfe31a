#include "cli/cli.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>

#include "control/published_device.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Result {
  int rc;
  std::string out, err;
};

Result Cli(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int rc = RunCli(args, out, err);
  return Result{rc, out.str(), err.str()};
}

TEST(Cli, VersionAndHelp) {
  EXPECT_EQ(Cli({"version"}).out, "nvmf-ublk 0.1.0\n");
  Result h = Cli({"--help"});
  EXPECT_EQ(h.rc, 0);
  EXPECT_THAT(h.out, HasSubstr("connect"));
  EXPECT_THAT(h.out, HasSubstr("Usage: nvmf-ublk"));
  Result c = Cli({"connect", "--help"});
  EXPECT_EQ(c.rc, 0);
  for (const char* flag : {"--nr-io-queues", "--queue-size", "--hdr-digest", "--data-digest",
                           "--ctrl-loss-tmo", "--reconnect-delay", "--hostnqn", "--hostid"}) {
    EXPECT_THAT(c.out, HasSubstr(flag));
  }
}

TEST(Cli, UsageErrorsAreOneLine) {
  Result r = Cli({"connect", "-a", "127.0.0.1"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, StartsWith("nvmf-ublk: "));
  EXPECT_THAT(r.err, HasSubstr("--nqn is required"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  r = Cli({"connect", "-t", "rdma", "-a", "x", "-n", "nqn.x"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("rdma"));
  r = Cli({"frobnicate"});
  EXPECT_EQ(r.rc, 2);
  r = Cli({"disconnect", "-n", "nqn.x", "-d", "/dev/ublkb0"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("excludes"));
}

TEST(Cli, DaemonNotRunning) {
  Result r = Cli({"--socket", "/tmp/nvmf-ublk-cli-test-none.sock", "list"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("nvmf-ublkd is not running"));
  r = Cli({"--socket", "/tmp/nvmf-ublk-cli-test-none.sock", "connect", "-a", "127.0.0.1", "-n",
           "nqn.2026-01.io.test:x"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("nvmf-ublkd is not running"));
}

TEST(Cli, DiscoverUnreachableIsAClearError) {
  Result r = Cli({"discover", "-a", "127.0.0.1", "-s", "1", "-q", "nqn.2026-01.io.test:h", "-I",
                  "12345678-1234-1234-1234-123456789abc"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("discover 127.0.0.1:1: connect to 127.0.0.1:1: Connection refused"));
}

// A daemon that accepts the connection but never answers (hung): every wait is bounded.
TEST(Cli, HungDaemonTimesOutWithAClearMessage) {
  const std::string path = "/tmp/nvmf-ublk-cli-test-hung-" + std::to_string(getpid()) + ".sock";
  ::unlink(path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);  // connections wait in the backlog, never served
  const auto start = std::chrono::steady_clock::now();
  Result r = Cli({"--socket", path, "--timeout", "0.3", "list"});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("nvmf-ublkd did not answer within 0.3 s"));
  EXPECT_LT(took, std::chrono::seconds(3));
  r = Cli({"--socket", path, "--timeout", "0.2", "disconnect-all"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("did not answer"));
  ::close(fd);
  ::unlink(path.c_str());
}

TEST(Cli, MultipathUsageErrors) {
  Result r = Cli({"connect", "-a", "x", "-n", "nqn.x", "--iopolicy", "numa"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("numa"));
  r = Cli({"disconnect", "-n", "nqn.x", "-s", "4420"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("requires --traddr"));
  r = Cli({"disconnect", "-d", "/dev/ublkb0", "-a", "10.0.0.1"});
  EXPECT_EQ(r.rc, 2);
  r = Cli({"set-iopolicy", "-d", "/dev/ublkb0", "fastest"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("fastest"));
  Result h = Cli({"connect", "--help"});
  EXPECT_THAT(h.out, HasSubstr("--iopolicy"));
  EXPECT_THAT(h.out, HasSubstr("--no-ghost-write-hold"));
}

// A daemon that answers one request with `reply` (the first line it reads is ignored).
class OneReplyDaemon {
 public:
  explicit OneReplyDaemon(std::string reply)
      : path_("/tmp/nvmf-ublk-cli-test-one-" + std::to_string(getpid()) + ".sock") {
    ::unlink(path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(fd_, 4);
    thread_ = std::thread([this, reply = std::move(reply)] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      std::string got;
      while (got.find('\n') == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof(buf));
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
      const std::string line = reply + "\n";
      (void)!::write(c, line.data(), line.size());
      ::close(c);
    });
  }
  ~OneReplyDaemon() {
    thread_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::thread thread_;
};

TEST(Cli, ConnectSaysWhenANamespaceCannotBeShared) {
  OneReplyDaemon d(R"({"ok":true,"devices":[{"path":"/dev/ublkb3","nsid":2,"stable_id":""}]})");
  Result r = Cli({"--socket", d.path(), "connect", "-a", "127.0.0.1", "-n", "nqn.2026-01.io.t:x",
                  "-q", "nqn.2026-01.io.test:h", "-I", "12345678-1234-1234-1234-123456789abc"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "/dev/ublkb3\n");
  EXPECT_THAT(r.err, HasSubstr("namespace 2 reports no NGUID, EUI-64 or UUID"));
}

TEST(Cli, UdevInfoPrintsWhatTheDaemonPublished) {
  const std::string dir = "/tmp/nvmf-ublk-cli-udev-" + std::to_string(getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  control::PublishedDevice d;
  d.dev_id = 5;
  d.subnqn = "nqn.2026-01.io.test:s";
  d.nsid = 1;
  d.nguid = "00112233445566778899aabbccddeeff";
  d.model = "Linux";
  d.serial = "0123";
  ASSERT_TRUE(control::WritePublishedDevice(dir, d).ok());
  Result r = Cli({"udev-info", "ublkb5p2", "--state-dir", dir});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("NVMF_UBLK_EUI=00112233445566778899aabbccddeeff\n"));
  EXPECT_THAT(r.out, HasSubstr("ID_SERIAL_SHORT=0123\n"));
  EXPECT_THAT(r.out, HasSubstr("ID_WWN=eui.00112233445566778899aabbccddeeff\n"));
  // Not one of ours (another ublk server's device): no properties, no error.
  r = Cli({"udev-info", "ublkb6", "--state-dir", dir});
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "");
  r = Cli({"udev-info", "sda", "--state-dir", dir});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("not a ublk block device"));
  control::RemovePublishedDevice(dir, 5);
  ::rmdir((dir + "/devices").c_str());
  ::rmdir(dir.c_str());
}

TEST(Cli, HelpSaysWhatStopAndRestartDo) {
  Result h = Cli({"--help"});
  EXPECT_THAT(h.out, HasSubstr("keeps every device"));
  EXPECT_THAT(h.out, HasSubstr("disconnect-all"));
}

}  // namespace
}  // namespace nvmf_ublk::cli
