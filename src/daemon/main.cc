// nvmf-ublkd: the nvmf-ublk daemon. Run by systemd (Type=notify) or by hand as root.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mounts.h"
#include "daemon/control_server.h"
#include "daemon/daemon.h"
#include "daemon/state_file.h"

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
  // By device number: the user may have mounted /dev/disk/by-id/nvmf-ublk-..., or a partition.
  for (const nvmf_ublk::Mount& m : nvmf_ublk::MountsOfAnyUblkDevice()) {
    if (::umount2(m.mountpoint.c_str(), MNT_DETACH) != 0) {
      NLOG(WARNING) << "detaching " << m.mountpoint
                    << " in the daemon's namespace: " << strerror(errno);
    }
  }
}

// systemd's watchdog interval (WatchdogSec=), 0 when not enabled.
int64_t WatchdogIntervalNs() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0) return 0;
  return static_cast<int64_t>(usec) * 1000;
}

constexpr int kExitConfig = 78;  // EX_CONFIG: the unit's RestartPreventExitStatus

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
  double handover_s = 8;
  CLI::App app{
      "nvmf-ublkd: serves NVMe over Fabrics namespaces as ublk block devices.\n\n"
      "Devices outlive the daemon. SIGTERM or SIGINT (systemctl stop/restart, a package "
      "upgrade) hands them over: no new requests are taken, I/O stays queued in the kernel, "
      "the daemon exits 0 within --handover-timeout and keeps its state file; the next "
      "nvmf-ublkd recovers every device (same /dev/ublkbN, mounted filesystems stay, no I/O "
      "error). A crash or SIGKILL is recovered the same way. Devices are removed only by "
      "`nvmf-ublk disconnect` / `disconnect-all` (at system shutdown: "
      "nvmf-ublk-shutdown.service, after remote filesystems are unmounted).",
      "nvmf-ublkd"};
  app.add_option("--state-dir", opts.state_dir, "state file and default socket directory")
      ->capture_default_str();
  app.add_option("--socket", socket, "control socket (default: <state-dir>/control.sock)");
  app.add_option("--reactors", opts.reactors, "I/O reactor threads (default: online CPUs)");
  app.add_option("--poll-us", opts.poll_us,
                 "each I/O reactor looks for completions this many microseconds before it sleeps: "
                 "lower latency, for up to a core of CPU per reactor while I/O runs (default 0: "
                 "sleep at once)")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--max-io-bytes", opts.max_io_bytes, "largest I/O per request (tag buffer)")
      ->capture_default_str();
  app.add_option("--io-timeout", opts.io_timeout_s,
                 "seconds a command may go unanswered before it is aborted and, if the Abort "
                 "is not answered either, its connection reset (nvme_core.io_timeout)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--stop-timeout", opts.stop_timeout_s,
                 "seconds disconnect waits for a device's I/O to stop; a device whose I/O is "
                 "stuck longer is given up (kept in memory, its requests failed with EIO)")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 3600.0));
  app.add_option("--handover-timeout", handover_s,
                 "seconds SIGTERM waits for I/O at the targets before exiting")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
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

  // The state file first: one this daemon cannot read belongs to a newer daemon's devices, and is
  // left alone (no socket, no recovery, nothing written).
  if (::mkdir(opts.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    std::cerr << "nvmf-ublkd: mkdir " << opts.state_dir << ": " << strerror(errno) << "\n";
    return 1;
  }
  const std::string state_path = opts.state_dir + "/state.json";
  daemon::State state;
  if (auto loaded = daemon::LoadState(state_path); loaded.ok()) {
    state = std::move(*loaded);
  } else if (loaded.status().code() == absl::StatusCode::kFailedPrecondition) {
    std::cerr << "nvmf-ublkd: " << loaded.status().message() << "\n";
    const std::string why(loaded.status().message());
    sd_notifyf(0, "STATUS=refusing: %s", why.c_str());
    return kExitConfig;
  } else {
    // Unreadable: keep it for inspection, start empty (its devices cannot be recovered).
    const std::string aside = state_path + ".unreadable";
    ::rename(state_path.c_str(), aside.c_str());
    NLOG(ERROR) << loaded.status() << "; moved to " << aside
                << ": its devices, if any, are not recovered";
  }

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
  (*d)->StartRecovery(state);
  int to_recover = 0;
  for (const auto& c : state.connections) to_recover += static_cast<int>(c.devices.size());
  NLOG(INFO) << "nvmf-ublkd ready on " << socket << "; recovering " << to_recover << " device(s)";
  sd_notifyf(0, "READY=1\nSTATUS=serving; recovering %d device(s)", to_recover);

  // The control loop: signals, the watchdog (WATCHDOG=1 only while every reactor answers) and
  // STATUS= while devices are being recovered.
  const int64_t watchdog_ns = WatchdogIntervalNs();
  std::string last_status;
  int sig = 0;
  while (true) {
    const daemon::DeviceCounts n = (*d)->Counts();
    const std::string status =
        n.recovering > 0 ? absl::StrCat("serving ", n.live, " device(s); recovering ", n.recovering)
                         : absl::StrCat("serving ", n.live, " device(s)");
    if (status != last_status) {
      sd_notifyf(0, "STATUS=%s", status.c_str());
      last_status = status;
    }
    int64_t wait_ns = -1;
    if (watchdog_ns > 0) wait_ns = watchdog_ns / 3;
    if (n.recovering > 0 && (wait_ns < 0 || wait_ns > 1'000'000'000)) wait_ns = 1'000'000'000;
    if (wait_ns < 0) {
      if (sigwait(&set, &sig) != 0) continue;
    } else {
      timespec ts{};
      ts.tv_sec = static_cast<time_t>(wait_ns / 1'000'000'000);
      ts.tv_nsec = static_cast<decltype(ts.tv_nsec)>(wait_ns % 1'000'000'000);
      sig = sigtimedwait(&set, nullptr, &ts);
      if (sig < 0) {
        if (watchdog_ns > 0) {
          if ((*d)->ReactorsResponsive(watchdog_ns / 3)) {
            sd_notify(0, "WATCHDOG=1");
          } else {
            NLOG(ERROR) << "a reactor did not answer within " << watchdog_ns / 3000000
                        << " ms: not petting the watchdog";
          }
        }
        continue;
      }
    }
    if (sig == SIGHUP) continue;  // reserved for configuration reloads
    break;
  }
  const int64_t stop_ns = nvmf_ublk::MonotonicNanos();
  NLOG(INFO) << "signal " << sig << ": handing the devices over to the next nvmf-ublkd";
  sd_notify(0, "STOPPING=1\nSTATUS=handing devices over");
  (*server)->StopAccepting();
  const daemon::HandOverSummary sum = (*d)->HandOver(static_cast<int64_t>(handover_s * 1e9));
  NLOG(INFO) << "handed over " << sum.devices << " device(s) in "
             << (nvmf_ublk::MonotonicNanos() - stop_ns) / 1000000 << " ms (" << sum.held
             << " request(s) queued for the next daemon, " << sum.in_flight_left << " unanswered, "
             << sum.quiesced << " quiesced); exiting";
  std::cout.flush();
  std::cerr.flush();
  // No destructors: they would wait for threads that may be blocked on the targets, and nothing
  // here may stop a device. The kernel closes the sockets and the ublk queues (I/O stays queued).
  _exit(0);
}
