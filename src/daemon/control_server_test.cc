#include "daemon/control_server.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvmf_ublk/control.h"

namespace nvmf_ublk::daemon {
namespace {

using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

std::string Dir() { return "/tmp/nvmf-ublk-cs-test-" + std::to_string(getpid()); }

TEST(ControlServer, ServesRequestsAndRejectsASecondDaemon) {
  const std::string path = Dir() + "/control.sock";
  int calls = 0;
  ASSERT_OK_AND_ASSIGN(auto server, ControlServer::Start(path, [&](const nlohmann::json& req) {
                         ++calls;
                         return nlohmann::json{{"ok", true}, {"echo", req.value("cmd", "")}};
                       }));
  ASSERT_OK_AND_ASSIGN(ControlClient c, ControlClient::Open(path));
  ASSERT_OK_AND_ASSIGN(std::string reply, c.Call(R"({"cmd":"list"})"));
  EXPECT_THAT(reply, HasSubstr("\"echo\":\"list\""));
  ASSERT_OK_AND_ASSIGN(reply, c.Call("not json"));
  EXPECT_THAT(reply, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(ControlServer::Start(path, nullptr),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("already listening")));
  server.reset();
  EXPECT_NE(access(path.c_str(), F_OK), 0);  // the socket file is removed
  rmdir(Dir().c_str());
}

TEST(ControlServer, OnlyRootMayTalkToIt) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to drop to another user";
  const std::string path = Dir() + "-perm/control.sock";
  ASSERT_OK_AND_ASSIGN(auto server, ControlServer::Start(path, [](const nlohmann::json&) {
                         return nlohmann::json{{"ok", true}};
                       }));
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    std::string msg = "setuid failed";
    if (setgid(65534) == 0 && setuid(65534) == 0) {
      auto c = ControlClient::Open(path);
      msg = c.ok() ? "connected" : std::string(c.status().message());
    }
    ssize_t unused = write(pipefd[1], msg.data(), msg.size());
    (void)unused;
    _exit(0);
  }
  close(pipefd[1]);
  char buf[512] = {};
  ssize_t n = read(pipefd[0], buf, sizeof(buf) - 1);
  close(pipefd[0]);
  waitpid(pid, nullptr, 0);
  ASSERT_GT(n, 0);
  EXPECT_THAT(std::string(buf), HasSubstr("permission denied"));
  server.reset();
  rmdir((Dir() + "-perm").c_str());
}

}  // namespace
}  // namespace nvmf_ublk::daemon
