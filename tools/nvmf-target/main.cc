// nvmf-target: the command line front end of the test target (see cli.h and --help).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/unique_fd.h"
#include "cli.h"
#include "target.h"

namespace nvmf_ublk::target {
namespace {

std::string HostPort(const std::string& addr, uint16_t port) {
  return addr.find(':') != std::string::npos ? "[" + addr + "]:" + std::to_string(port)
                                             : addr + ":" + std::to_string(port);
}

// Opens the control channel: stdin for "-", else a FIFO (created if missing), opened read-write so
// that writers coming and going never produce EOF.
int OpenControl(const std::string& path) {
  if (path == "-") return STDIN_FILENO;
  if (mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) {
    std::cerr << "nvmf-target: mkfifo " << path << ": " << strerror(errno) << "\n";
    return -1;
  }
  const int fd = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) std::cerr << "nvmf-target: open " << path << ": " << strerror(errno) << "\n";
  return fd;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<CliOptions> parsed = ParseCommandLine(args);
  if (!parsed.ok()) {
    std::cerr << "nvmf-target: " << parsed.status().message() << "\n";
    return 2;
  }
  CliOptions& opts = *parsed;
  if (opts.help) {
    std::cout << UsageText();
    return 0;
  }
  SetMinLogLevel(opts.log_level);

  // SIGINT/SIGTERM arrive through a signalfd; block them before any thread starts so every thread
  // inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  UniqueFd sigfd(signalfd(-1, &signals, SFD_CLOEXEC));
  if (!sigfd) {
    std::cerr << "nvmf-target: signalfd: " << strerror(errno) << "\n";
    return 1;
  }

  Target target(opts.config);
  absl::StatusOr<std::vector<uint16_t>> ports = target.Start();
  if (!ports.ok()) {
    std::cerr << "nvmf-target: " << ports.status().message() << "\n";
    return 1;
  }
  for (const auto& [ref, fault] : opts.port_faults) {
    absl::StatusOr<size_t> port = ResolvePort(target, ref);
    absl::Status s = port.ok() ? target.SetFault(fault, *port) : port.status();
    if (!s.ok()) {
      std::cerr << "nvmf-target: --fault: " << s.message() << "\n";
      return 2;
    }
  }
  for (const auto& [ref, group, state] : opts.ana) {
    absl::StatusOr<size_t> port = ResolvePort(target, ref);
    absl::Status s = port.ok() ? target.SetAnaState(*port, group, state) : port.status();
    if (!s.ok()) {
      std::cerr << "nvmf-target: --ana: " << s.message() << "\n";
      return 2;
    }
  }

  int control = -1;
  if (!opts.control.empty()) {
    control = OpenControl(opts.control);
    if (control < 0) return 1;
  }
  for (size_t i = 0; i < ports->size(); ++i) {
    std::cout << "listening on " << HostPort(opts.config.ports[i].address, (*ports)[i]) << "\n";
  }
  std::cout.flush();

  std::string pending;
  bool quit = false;
  while (!quit) {
    pollfd fds[2] = {{sigfd.get(), POLLIN, 0}, {control, POLLIN, 0}};
    if (poll(fds, control >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      std::cerr << "nvmf-target: poll: " << strerror(errno) << "\n";
      break;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;
      (void)!read(sigfd.get(), &info, sizeof(info));
      NLOG(INFO) << "signal " << strsignal(static_cast<int>(info.ssi_signo)) << ": stopping";
      break;
    }
    if (control >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) {
      char buf[4096];
      const ssize_t n = read(control, buf, sizeof(buf));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        control = -1;  // stdin closed: keep serving until a signal
        continue;
      }
      if (n < 0) continue;
      pending.append(buf, static_cast<size_t>(n));
      for (size_t nl; !quit && (nl = pending.find('\n')) != std::string::npos;) {
        const std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        absl::StatusOr<std::string> out = RunControlCommand(target, line, &quit);
        if (!out.ok()) {
          std::cout << "error: " << out.status().message() << "\n";
        } else if (!out->empty()) {
          std::cout << *out << (out->back() == '\n' ? "" : "\n");
        }
        std::cout.flush();
      }
    }
  }
  target.Stop();
  return 0;
}

}  // namespace
}  // namespace nvmf_ublk::target

int main(int argc, char** argv) { return nvmf_ublk::target::Main(argc, argv); }
