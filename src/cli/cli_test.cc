#include "cli/cli.h"

#include <sstream>

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

}  // namespace
}  // namespace nvmf_ublk::cli
