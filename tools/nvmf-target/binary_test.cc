// The nvmf-target executable end to end: flags, the "listening on" line, control commands on
// stdin, SIGTERM.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/clock.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/test_host.h"

namespace nvmf_ublk::target {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kNqn[] = "nqn.2026-01.io.nvmf-ublk:binary";

class Process {
 public:
  explicit Process(std::vector<std::string> args) {
    int in[2], out[2], err[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
    std::vector<char*> argv;  // built before fork(): the child only calls async-signal-safe code
    argv.push_back(const_cast<char*>(NVMF_TARGET_BINARY));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      execv(NVMF_TARGET_BINARY, argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    stderr_ = err[0];
    fcntl(stderr_, F_SETFL, O_NONBLOCK);
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(stdin_);
    close(stdout_);
    close(stderr_);
  }
  // The next line of stdout ("" on timeout or EOF).
  std::string ReadLine(int timeout_ms = 5000) {
    const int64_t deadline = MonotonicNanos() / 1'000'000 + timeout_ms;
    while (true) {
      const size_t nl = buffered_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffered_.substr(0, nl);
        buffered_.erase(0, nl + 1);
        return line;
      }
      const int64_t left = deadline - MonotonicNanos() / 1'000'000;
      pollfd p{stdout_, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return "";
      char buf[1024];
      const ssize_t n = read(stdout_, buf, sizeof(buf));
      if (n <= 0) return "";
      buffered_.append(buf, static_cast<size_t>(n));
    }
  }
  void Write(const std::string& text) {
    ASSERT_EQ(write(stdin_, text.data(), text.size()), ssize_t(text.size()));
  }
  std::string Stderr() {
    std::string s;
    char buf[4096];
    for (ssize_t n; (n = read(stderr_, buf, sizeof(buf))) > 0;)
      s.append(buf, static_cast<size_t>(n));
    return s;
  }
  // Exit status, or -1 if it does not exit within `timeout_ms`.
  int Wait(int timeout_ms = 5000) {
    for (int i = 0; i < timeout_ms / 10; ++i) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      usleep(10'000);
    }
    return -1;
  }
  void Signal(int sig) { kill(pid_, sig); }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int stdin_ = -1, stdout_ = -1, stderr_ = -1;
  std::string buffered_;
};

TEST(BinaryTest, ServesControlsAndExitsOnSigterm) {
  Process p({"--listen", "127.0.0.1:0", "--subsystem", kNqn, "--ns", "ram:4M", "--ns",
             "null:1G:4096,ana-group=2", "--control", "-", "--log-level", "warning"});
  const std::string line = p.ReadLine();
  ASSERT_THAT(line, StartsWith("listening on 127.0.0.1:"));
  const uint16_t port = static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));

  auto s = testing::ConnectSession(port, kNqn);
  ASSERT_THAT(s, IsOk());
  std::vector<uint8_t> data = testing::Pattern(4096, 1), back(4096);
  auto w = s->io0().Run(nvme::BuildWrite(1, 0, 8, false), data.data(), 4096);
  ASSERT_THAT(w, IsOk());
  EXPECT_TRUE(w->ok());
  auto r = s->io0().Run(nvme::BuildRead(1, 0, 8), back.data(), 4096);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(back, data);

  p.Write("ana #0 2 inaccessible\n");
  EXPECT_EQ(p.ReadLine(), "port " + std::to_string(port) + " group 2 inaccessible");
  r = s->io0().Run(nvme::BuildRead(2, 0, 1), back.data(), 4096);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->sc(), nvme::kScAnaInaccessible);
  p.Write("fault nonsense=1\n");
  EXPECT_THAT(p.ReadLine(), HasSubstr("error: unknown fault 'nonsense'"));

  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(), 0);
  EXPECT_TRUE(s->io0().WaitClosed(2000));
}

TEST(BinaryTest, QuitCommandExits) {
  Process p({"--listen", "127.0.0.1:0", "--ns", "ram:1M", "--control", "-"});
  ASSERT_THAT(p.ReadLine(), StartsWith("listening on"));
  p.Write("quit\n");
  EXPECT_EQ(p.ReadLine(), "bye");
  EXPECT_EQ(p.Wait(), 0);
}

TEST(BinaryTest, BadFlagsFailWithAClearMessage) {
  Process p({"--ns", "ram:12Q"});
  EXPECT_EQ(p.Wait(), 2);
  EXPECT_THAT(p.Stderr(), HasSubstr("nvmf-target: --ns 'ram:12Q': invalid size '12Q'"));
  Process q({"--listen", "127.0.0.1:1", "--listen", "127.0.0.1:1", "--ns", "ram:1M"});
  EXPECT_NE(q.Wait(), 0);  // port 1 needs privileges, or the second bind fails
  EXPECT_THAT(q.Stderr(), HasSubstr("bind 127.0.0.1:1"));
}

}  // namespace
}  // namespace nvmf_ublk::target
