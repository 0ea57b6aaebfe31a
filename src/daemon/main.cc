// nvmf-ublkd: the nvmf-ublk daemon. Run by systemd (Type=notify) or by hand as root.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "base/log.h"
#include "daemon/control_server.h"
#include "daemon/daemon.h"

namespace {

// The daemon must never hold or wait on a filesystem that lives on one of its own devices: a sync
// or unmount needing the daemon would deadlock, and a copy of such a mount in the daemon's
// namespace would keep the device open after the user unmounted it (so it could never be deleted).
// So the daemon gets a private mount namespace (later mounts do not propagate into it), and the
// copies of ublk-backed mounts it inherited (a restart while filesystems are mounted) are detached
// in it.
void PrivateMountNamespace() {
  if (::unshare(CLONE_NEWNS) != 0) {
    NLOG(WARNING) << "unshare(CLONE_NEWNS): " << strerror(errno)
                  << "; running in the host mount namespace";
    return;
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    NLOG(WARNING) << "making / private: " << strerror(errno);
  }
  // /proc/self/mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SOURCE ...".
  std::ifstream info("/proc/self/mountinfo");
  std::vector<std::string> ublk_mounts;
  for (std::string line; std::getline(info, line);) {
    std::istringstream in(line);
    std::string id, parent, dev, root, mountpoint, field;
    in >> id >> parent >> dev >> root >> mountpoint;
    while (in >> field && field != "-") {
    }
    std::string fstype, source;
    in >> fstype >> source;
    if (source.rfind("/dev/ublkb", 0) == 0) ublk_mounts.push_back(mountpoint);
  }
  for (auto it = ublk_mounts.rbegin(); it != ublk_mounts.rend(); ++it) {
    if (::umount2(it->c_str(), MNT_DETACH) != 0) {
      NLOG(WARNING) << "detaching " << *it << " in the daemon's namespace: " << strerror(errno);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  using nvmf_ublk::LogLevel;
  using nvmf_ublk::ParseLogLevel;
  using nvmf_ublk::SetMinLogLevel;
  namespace daemon = nvmf_ublk::daemon;
  daemon::DaemonOptions opts;
  std::string socket;
  std::string level = "info";
  bool shared_mounts = false;
  CLI::App app{"nvmf-ublkd: serves NVMe over Fabrics namespaces as ublk block devices",
               "nvmf-ublkd"};
  app.add_option("--state-dir", opts.state_dir, "state file and default socket directory")
      ->capture_default_str();
  app.add_option("--socket", socket, "control socket (default: <state-dir>/control.sock)");
  app.add_option("--reactors", opts.reactors, "I/O reactor threads (default: online CPUs)");
  app.add_option("--max-io-bytes", opts.max_io_bytes, "largest I/O per request (tag buffer)")
      ->capture_default_str();
  app.add_option("--log-level", level, "debug|info|warning|error")->capture_default_str();
  app.add_flag("--shared-mounts", shared_mounts,
               "stay in the caller's mount namespace (tests only)");
  CLI11_PARSE(app, argc, argv);
  LogLevel lvl;
  if (!ParseLogLevel(level, &lvl)) {
    std::cerr << "nvmf-ublkd: unknown log level '" << level << "'\n";
    return 2;
  }
  SetMinLogLevel(lvl);
  if (socket.empty()) socket = opts.state_dir + "/control.sock";
  if (geteuid() != 0) {
    std::cerr << "nvmf-ublkd: must run as root (ublk devices and /run/nvmf-ublk)\n";
    return 1;
  }

  // Signals are taken synchronously by the main thread; every other thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (!shared_mounts) PrivateMountNamespace();
  auto d = daemon::Daemon::Create(opts);
  if (!d.ok()) {
    std::cerr << "nvmf-ublkd: " << d.status().message() << "\n";
    return 1;
  }
  auto server = daemon::ControlServer::Start(
      socket, [&](const nlohmann::json& req) { return (*d)->Handle(req); });
  if (!server.ok()) {
    std::cerr << "nvmf-ublkd: " << server.status().message() << "\n";
    return 1;
  }
  (*d)->StartRecovery();
  NLOG(INFO) << "nvmf-ublkd ready on " << socket;
  sd_notify(0, "READY=1\nSTATUS=serving");

  int sig = 0;
  while (true) {
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) continue;  // reserved for configuration reloads
    break;
  }
  NLOG(INFO) << "signal " << sig << ": stopping devices and controllers";
  sd_notify(0, "STOPPING=1");
  server->reset();
  (*d)->Shutdown();
  return 0;
}
