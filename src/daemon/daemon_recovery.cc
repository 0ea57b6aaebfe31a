// nvmf-ublkd across a restart (DESIGN.md §4): the hand-over to the next daemon, the watchdog's
// responsiveness probe, and the recovery of the state file's devices (a thread per connection).
// Split from daemon.cc by responsibility.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log.h"
#include "control/published_device.h"
#include "daemon/daemon.h"
#include "daemon/daemon_parts.h"
#include "discovery/host_identity.h"

namespace nvmf_ublk::daemon {
namespace {

// Asks udev to read the device again (a `change` uevent), e.g. after its published file changed.
void TriggerChange(uint32_t dev_id) {
  const std::string path = absl::StrCat("/sys/class/block/ublkb", dev_id, "/uevent");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t unused = ::write(fd, "change", 6);
  (void)unused;
  ::close(fd);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

void Daemon::StartRecovery(const State& state) {
  for (const auto& rec : state.connections) {
    NLOG(INFO) << "recovering " << rec.args.subnqn << " at " << rec.args.traddr << ":"
               << rec.args.trsvcid << " (" << rec.devices.size() << " device(s))";
    // Listed (as recovering) from now on, before its thread runs.
    auto conn = std::make_shared<Conn>();
    conn->args = rec.args;
    conn->pending = rec.devices;
    if (!discovery::ParseUuid(conn->args.hostid).ok()) {
      // A damaged host ID must not become all zeros (another host to the target): use this
      // host's configured identity, as a new connect would, and say so.
      auto id = discovery::ResolveHostIdentity(conn->args.hostnqn, "");
      NLOG(ERROR) << "state file: " << rec.args.subnqn << ": host ID '" << rec.args.hostid
                  << "' is not a UUID; using "
                  << (id.ok() ? id->hostid : std::string("none (") + id.status().ToString() + ")");
      if (id.ok()) conn->args.hostid = id->hostid;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(conn);
    }
    recovery_threads_.emplace_back([this, conn, rec] { RecoverConnection(conn, rec); });
  }
  // Persistent discovery controllers come back, with the connections they had made.
  for (const auto& rec : state.discovery) {
    auto dc = std::make_shared<Dc>();
    dc->id = rec.id;
    dc->args = rec.args;
    dc->owner = rec.owner;
    dc->rec = discovery::Reconciler(discovery::ReconcileOptions{
        int64_t{rec.args.grace_s} * 1'000'000'000, 2'000'000'000, 300'000'000'000});
    int adopted = 0;
    for (const auto& c : state.connections) {
      if (c.args.owner != dc->ConnOwner()) continue;
      nvme::DiscoveryEntry e;
      e.trtype = 3;
      e.subtype = nvme::kSubtypeNvme;
      e.subnqn = c.args.subnqn;
      e.traddr = c.args.traddr;
      e.trsvcid = c.args.trsvcid;
      dc->rec.Adopt(e);
      ++adopted;
    }
    NLOG(INFO) << "persistent discovery controller " << rec.id << " (" << adopted
               << " connection(s) of its own)";
    {
      std::lock_guard<std::mutex> lock(mu_);
      dcs_.push_back(dc);
    }
    StartDc(dc);
  }
}

// `owned` keeps the connection alive here even if a disconnect removes it from conns_.
void Daemon::RecoverConnection(const std::shared_ptr<Conn>& owned, const ConnectionRecord& record) {
  Conn* conn = owned.get();
  absl::Status live;
  {
    std::lock_guard<std::mutex> ops(ops_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (conn->cancelled || stopping_) return;
    }
    live = StartController(conn, /*retry_initial=*/true);
  }
  if (live.ok()) live = WaitLive(conn);  // bounded by ctrl_loss_tmo
  std::lock_guard<std::mutex> ops(ops_mu_);
  bool cancelled = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Stopping: the devices stay for the next daemon, untouched (no CC.SHN, no removal).
    if (stopping_) return;
    cancelled = conn->cancelled;
  }
  if (cancelled) {
    // Disconnected meanwhile: whoever cancelled removed the devices. (Not under mu_: the
    // controller's state callbacks take it.)
    DestroyController(conn);
    return;
  }
  auto ctl = UblkControl();
  for (const DeviceRecord& rec : record.devices) {
    {
      // Stopping: what is not recovered yet stays as it is (in the kernel and the state file).
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    const uint32_t dev_id = static_cast<uint32_t>(rec.dev_id);
    absl::Status s = live;
    if (!ctl.ok()) s = ctl.status();
    const io::NamespaceEntry* ns = nullptr;
    if (s.ok()) {
      for (const auto& e : conn->ctrl->namespaces()) {
        if (e.nsid == rec.nsid) ns = &e;
      }
      if (ns == nullptr) {
        s = absl::NotFoundError(absl::StrCat("namespace ", rec.nsid, " is gone"));
      } else if (!rec.stable_id.empty() && ns->ids.StableId() != rec.stable_id) {
        s = absl::FailedPreconditionError(absl::StrCat(
            "namespace ", rec.nsid, " is now ", ns->ids.StableId(), ", was ", rec.stable_id));
      }
    }
    // Another path of the device may have recovered it already: this one joins it.
    std::shared_ptr<Device> existing;
    {
      std::lock_guard<std::mutex> lock(mu_);
      existing = FindDeviceById(rec.dev_id);
    }
    std::shared_ptr<Device> dev;
    if (s.ok() && existing) {
      s = CheckPathMatches(*existing, *conn, *ns);
      if (s.ok()) AddPath(existing.get(), conn, rec.nsid);
    } else if (s.ok()) {
      dev = std::make_shared<Device>();
      dev->subnqn = conn->args.subnqn;
      dev->stable_id = rec.stable_id.empty() ? ns->ids.StableId() : rec.stable_id;
      dev->ids = ns->ids;
      dev->ns = ns->info;
      auto info = (*ctl)->GetDeviceInfo(dev_id);
      if (!info.ok()) s = info.status();
      if (s.ok()) {
        const uint16_t nq = info->nr_hw_queues;
        dev->nr_queues = nq;
        auto p = std::make_unique<DevPath>();
        p->conn = conn;
        p->nsid = rec.nsid;
        p->path = std::make_unique<multipath::ControllerPath>(conn->ctrl.get(), rec.nsid, nq);
        const multipath::IoPolicy policy =
            multipath::ParseIoPolicy(rec.iopolicy).value_or(multipath::IoPolicy::kRoundRobin);
        dev->head = std::make_unique<multipath::NamespaceHead>(
            absl::StrCat(conn->args.subnqn, "/",
                         dev->stable_id.empty() ? conn->ctrl->name() : dev->stable_id),
            std::vector<multipath::Path*>{p->path.get()}, ns->info.lba_bytes, nq, info->queue_depth,
            policy);
        dev->paths.push_back(std::move(p));
        ublk::DeviceOptions dopt;
        dopt.stop_timeout_ns = static_cast<int64_t>(options_.stop_timeout_s * 1e9);
        const std::vector<io::Reactor*> reactors = engine_->io_reactors();
        auto recovered = ublk::UblkDevice::Recover(*ctl, dev_id, dopt, reactors, dev->head.get());
        if (recovered.ok()) {
          dev->dev = std::move(*recovered);
          dev->params = dev->dev->params();
        } else {
          s = recovered.status();
        }
      }
    }
    if (s.ok() && dev) {
      NLOG(INFO) << dev->dev->block_path() << ": recovered (" << rec.stable_id << "), "
                 << (MonotonicNanos() - created_ns_) / 1'000'000 << " ms after the daemon started";
      // Refresh what udev reads (a daemon of an older version may not have published it).
      const control::PublishedDevice pub = PublishedFor(*conn, *ns, rec.dev_id);
      const std::string path = control::PublishedDevicePath(options_.state_dir, rec.dev_id);
      if (ReadFile(path) != control::ToJsonText(pub)) {
        if (absl::Status w = control::WritePublishedDevice(options_.state_dir, pub); !w.ok()) {
          NLOG(WARNING) << "publishing " << dev->dev->block_path() << " for udev: " << w;
        }
        TriggerChange(dev_id);
      }
    } else if (!s.ok()) {
      dev.reset();
      bool elsewhere = existing != nullptr;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& other : conns_) {
          if (other.get() == conn || other->cancelled) continue;
          for (const auto& op : other->pending) elsewhere |= op.dev_id == rec.dev_id;
        }
      }
      if (elsewhere) {
        // Its other path(s) serve it, or may still recover it.
        NLOG(ERROR) << "/dev/ublkb" << dev_id << ": path " << conn->args.traddr << ":"
                    << conn->args.trsvcid << " not recovered: " << s;
      } else {
        // Never leave a device whose I/O waits forever: remove it (queued I/O fails).
        NLOG(ERROR) << "/dev/ublkb" << dev_id << ": cannot recover: " << s << "; removing it";
        if (ctl.ok()) RemoveKernelDevice(*ctl, dev_id);
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(conn->pending.begin(), conn->pending.end(),
                           [&](const DeviceRecord& p) { return p.dev_id == rec.dev_id; });
    if (it != conn->pending.end()) conn->pending.erase(it);
    if (dev) devices_.push_back(std::move(dev));
  }
  bool serves = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    serves = std::any_of(devices_.begin(), devices_.end(),
                         [&](const auto& d) { return Serves(*d, conn); });
  }
  if (!serves) {
    DestroyController(conn);
    RemoveConn(conn);
  }
  Persist();
}

bool Daemon::ReactorsResponsive(int64_t timeout_ns) {
  struct Pings {
    std::mutex mu;
    std::condition_variable cv;
    size_t answered = 0;
  };
  auto pings = std::make_shared<Pings>();
  std::vector<io::Reactor*> reactors = engine_->io_reactors();
  reactors.push_back(engine_->control());
  for (io::Reactor* r : reactors) {
    r->Post([pings] {
      std::lock_guard<std::mutex> lock(pings->mu);
      ++pings->answered;
      pings->cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(pings->mu);
  return pings->cv.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                            [&] { return pings->answered == reactors.size(); });
}

HandOverSummary Daemon::HandOver(int64_t timeout_ns) {
  const int64_t start = MonotonicNanos();
  const int64_t deadline = start + timeout_ns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();  // a connect or recovery waiting for its controller gives up
    for (const auto& dc : dcs_) {
      std::lock_guard<std::mutex> dl(dc->mu);
      dc->stop = true;  // a persistent discovery controller changes nothing from now on
      dc->cv.notify_all();
    }
  }
  // A request in progress finishes or gives up first (bounded: the hand-over must not hang).
  // Polled try_lock rather than timed_mutex::try_lock_for: the latter's pthread_mutex_clocklock is
  // invisible to GCC 12's ThreadSanitizer, which then reports every unlock as bogus.
  std::unique_lock<std::mutex> ops(ops_mu_, std::try_to_lock);
  const int64_t give_up = MonotonicNanos() + timeout_ns / 3;
  while (!ops.owns_lock() && MonotonicNanos() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ops.try_lock();
  }
  if (!ops.owns_lock()) {
    NLOG(WARNING) << "a control request is still running; handing the devices over without it";
  }
  std::vector<ublk::UblkDevice*> devs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& d : devices_) {
      if (d->dev) devs.push_back(d->dev.get());
    }
  }
  HandOverSummary sum;
  for (ublk::UblkDevice* dev : devs) {
    const ublk::HandOverReport r = dev->HandOver(deadline);
    ++sum.devices;
    sum.held += r.held;
    sum.in_flight_left += r.in_flight_left;
    if (r.quiesced) ++sum.quiesced;
    if (!r.quiesce_error.ok()) {
      NLOG(WARNING) << dev->block_path() << ": QUIESCE_DEV: " << r.quiesce_error
                    << " (the next daemon recovers it as after a crash)";
    }
    if (r.in_flight_left > 0) {
      NLOG(WARNING) << dev->block_path() << ": " << r.in_flight_left
                    << " request(s) still at the target; the kernel re-issues them to the next "
                       "daemon";
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    handed_over_ = true;
  }
  sum.elapsed_ns = MonotonicNanos() - start;
  return sum;
}

}  // namespace nvmf_ublk::daemon
