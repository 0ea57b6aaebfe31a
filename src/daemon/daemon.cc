#include "daemon/daemon.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"
#include "control/protocol.h"
#include "daemon/daemon_parts.h"
#include "discovery/host_identity.h"

namespace nvmf_ublk::daemon {

using nlohmann::json;

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(const DaemonOptions& options) {
  std::unique_ptr<Daemon> d(new Daemon(options));
  int reactors = options.reactors;
  if (reactors <= 0) reactors = std::max(1, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  ASSIGN_OR_RETURN(d->engine_,
                   io::Engine::Create(reactors, int64_t{std::max(options.poll_us, 0)} * 1000));
  return d;
}

namespace {

// Objects handed over to the next daemon: the kernel may still deliver completions to their queues
// until this process exits, so they are never freed.
void KeepForever(std::shared_ptr<void> p) {
  static std::mutex mu;
  static auto* kept = new std::vector<std::shared_ptr<void>>();
  std::lock_guard<std::mutex> lock(mu);
  kept->push_back(std::move(p));
}

}  // namespace

Daemon::~Daemon() {
  if (!handed_over_) HandOver(5'000'000'000);
  {
    // Persistent discovery controllers carry no device: they stop here (the state file keeps
    // them for the next daemon).
    std::vector<std::shared_ptr<Dc>> dcs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dcs = dcs_;
    }
    StopDcs(dcs);
  }
  for (auto& t : recovery_threads_) {
    if (t.joinable()) t.join();
  }
  std::vector<std::thread> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    events.swap(event_threads_);
  }
  for (auto& t : events) t.join();
  std::vector<std::shared_ptr<Conn>> conns;
  std::vector<std::shared_ptr<Device>> devices;
  {
    std::lock_guard<std::mutex> lock(mu_);
    conns.swap(conns_);
    devices.swap(devices_);
  }
  // Devices belong to the next daemon: no CC.SHN, nothing they may reach is freed.
  for (auto& d : devices) KeepForever(d);
  for (auto& c : conns) {
    const bool used =
        !c->pending.empty() || std::any_of(devices.begin(), devices.end(),
                                           [&](const auto& d) { return Serves(*d, c.get()); });
    if (used) {
      KeepForever(c);
    } else {
      DestroyController(c.get());  // nothing lives on it: an orderly shutdown
    }
  }
}

void Daemon::RemoveConn(Conn* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  conns_.erase(
      std::find_if(conns_.begin(), conns_.end(), [&](const auto& c) { return c.get() == conn; }));
}

absl::StatusOr<ublk::ControlDevice*> Daemon::UblkControl() {
  std::lock_guard<std::mutex> lock(ublk_mu_);
  if (!ublk_control_) {
    ASSIGN_OR_RETURN(ublk_control_, ublk::ControlDevice::Open(options_.ublk_control));
  }
  return ublk_control_.get();
}

io::ControllerOptions Daemon::ControllerOptionsFor(const ConnectArgs& a) const {
  io::ControllerOptions o;
  o.traddr = a.traddr;
  o.trsvcid = a.trsvcid;
  o.host_traddr = a.host_traddr;
  o.host_iface = a.host_iface;
  o.subnqn = a.subnqn;
  o.hostnqn = a.hostnqn;
  // Connect resolves and recovery repairs the host ID, so it always parses here.
  if (auto id = discovery::ParseUuid(a.hostid); id.ok()) o.hostid = *id;
  o.nr_io_queues = static_cast<uint32_t>(a.nr_io_queues);
  o.queue_size = static_cast<uint32_t>(a.queue_size);
  o.kato_s = a.keep_alive_tmo;
  o.reconnect_delay_s = a.reconnect_delay;
  o.ctrl_loss_tmo_s = a.ctrl_loss_tmo;
  o.fast_io_fail_tmo_s = a.fast_io_fail_tmo;
  o.hdr_digest = a.hdr_digest;
  // Validated when the request (or the state file) was read, so it parses here.
  if (auto dhchap = control::DhchapConfigFor(a); dhchap.ok()) o.dhchap = *dhchap;
  if (auto tls = control::TlsPskFor(a); tls.ok()) o.tls_psk = *tls;
  o.ghost_write_hold = a.ghost_write_hold;
  o.data_digest = a.data_digest;
  o.disable_sqflow = a.disable_sqflow;
  o.tos = a.tos;
  o.io_timeout_ns = static_cast<int64_t>(options_.io_timeout_s * 1e9);
  o.abort_timeout_ns = std::min<int64_t>(o.abort_timeout_ns, o.io_timeout_ns);
  return o;
}

Daemon::Conn* Daemon::FindConn(io::Controller* ctrl) {
  for (auto& c : conns_) {
    if (c->ctrl.get() == ctrl) return c.get();
  }
  return nullptr;
}

void Daemon::OnControllerState(io::Controller* ctrl, int state, const absl::Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  Conn* c = FindConn(ctrl);
  if (c == nullptr) {
    OnDcEvent(ctrl, state, why, false);
    return;
  }
  c->state = state;
  if (!why.ok()) c->reason = why;
  cv_.notify_all();
}

void Daemon::OnAsyncEvent(io::Controller* ctrl, const nvme::AsyncEvent& event) {
  if (event.type != nvme::kAerTypeNotice || event.info != nvme::kAerNoticeDiscoveryLogChange) {
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  OnDcEvent(ctrl, -1, absl::OkStatus(), true);
}

void Daemon::OnNamespaceChanged(io::Controller* ctrl, const io::NamespaceEntry& now) {
  // On the control reactor: find the device and hand the change to a thread of its own (a
  // control request may hold ops_mu_ while it waits for this reactor).
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  Conn* c = FindConn(ctrl);
  if (c == nullptr) return;
  for (const auto& d : devices_) {
    for (const auto& p : d->paths) {
      if (p->conn != c || p->nsid != now.nsid || !d->dev) continue;
      if (now.info.inactive()) {
        NLOG(ERROR) << d->dev->block_path() << ": namespace " << now.nsid << " is no longer "
                    << "active on " << ctrl->name() << "; I/O on that path fails";
        return;
      }
      if (now.info.lba_bytes != d->ns.lba_bytes) {
        NLOG(ERROR) << d->dev->block_path() << ": namespace " << now.nsid
                    << " changed its LBA format on " << ctrl->name() << " (" << now.info.lba_bytes
                    << " bytes, was " << d->ns.lba_bytes << "); the device keeps its format";
        return;
      }
      if (now.info.nsze == d->ns.nsze) return;
      event_threads_.emplace_back(
          [this, dev = d, nsze = now.info.nsze] { ResizeDevice(dev, nsze); });
      return;
    }
  }
}

void Daemon::ResizeDevice(const std::shared_ptr<Device>& dev, uint64_t nsze) {
  std::lock_guard<std::mutex> ops(ops_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || !dev->dev || dev->ns.nsze == nsze) return;  // another path told it already
  }
  const uint64_t bytes = nsze * dev->ns.lba_bytes;
  const uint64_t was = dev->dev->params().size_bytes;
  absl::Status s;
  {
    // Under mu_: list reads the device's parameters under it. UPDATE_SIZE does not wait for I/O.
    std::lock_guard<std::mutex> lock(mu_);
    s = dev->dev->Resize(bytes);
  }
  if (!s.ok()) {
    NLOG(WARNING) << dev->dev->block_path() << ": the namespace now has " << bytes
                  << " bytes (the device " << was << "): " << s.message()
                  << "; reconnect to see the new size";
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    dev->ns.nsze = nsze;
    dev->params.size_bytes = bytes;
  }
  NLOG(INFO) << dev->dev->block_path() << ": resized from " << was << " to " << bytes
             << " bytes (the namespace changed size)";
}

// Caller holds ops_mu_ (conn->ctrl is only created or destroyed under it, and written under mu_
// too, so that List() may read it under mu_ alone).
absl::Status Daemon::StartController(Conn* conn, bool retry_initial) {
  io::ControllerOptions o = ControllerOptionsFor(conn->args);
  o.retry_initial_connect = retry_initial;
  io::Reactor* control = engine_->control();
  absl::Status s = io::Engine::RunOn(control, [&] {
    auto ctrl = std::make_unique<io::Controller>(o, control, engine_->io_reactors(),
                                                 static_cast<io::ControllerListener*>(this));
    io::Controller* raw = ctrl.get();
    {
      std::lock_guard<std::mutex> lock(mu_);
      conn->ctrl = std::move(ctrl);
    }
    return raw->Start();
  });
  return s;
}

absl::Status Daemon::WaitLive(Conn* conn) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] {
    return conn->state == io::Controller::kLive || conn->state == io::Controller::kDeleted ||
           conn->cancelled || stopping_;
  });
  if (stopping_) return absl::UnavailableError("nvmf-ublkd is stopping");
  if (conn->cancelled) return absl::CancelledError("disconnected");
  if (conn->state == io::Controller::kLive) return absl::OkStatus();
  return conn->reason.ok() ? absl::UnavailableError("controller was removed") : conn->reason;
}

void Daemon::DestroyController(Conn* conn) { ShutDownAndDestroy(&conn->ctrl); }

void Daemon::ShutDownAndDestroy(std::unique_ptr<io::Controller>* ctrl) {
  if (!*ctrl) return;
  io::Reactor* control = engine_->control();
  std::promise<void> done;
  control->Post([&] { (*ctrl)->Shutdown([&] { done.set_value(); }); });
  done.get_future().wait();
  io::Engine::RunOn(control, [&] {
    std::unique_ptr<io::Controller> dying;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dying = std::move(*ctrl);
    }
    dying.reset();
    return 0;
  });
}

bool Daemon::Serves(const Device& dev, const Conn* conn) const {
  return std::any_of(dev.paths.begin(), dev.paths.end(),
                     [&](const auto& p) { return p->conn == conn; });
}

std::shared_ptr<Daemon::Device> Daemon::FindDeviceById(int dev_id) {
  for (const auto& d : devices_) {
    if (d->dev && static_cast<int>(d->dev->dev_id()) == dev_id) return d;
  }
  return nullptr;
}

std::shared_ptr<Daemon::Device> Daemon::FindDeviceByIdentity(const std::string& subnqn,
                                                             const std::string& stable_id) {
  if (stable_id.empty()) return nullptr;
  for (const auto& d : devices_) {
    if (d->dev && d->subnqn == subnqn && d->stable_id == stable_id) return d;
  }
  return nullptr;
}

void Daemon::PublishPaths(Device* dev) {
  std::vector<multipath::Path*> raw;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& p : dev->paths) raw.push_back(p->path.get());
  }
  const std::vector<io::Reactor*> reactors = engine_->io_reactors();
  for (uint16_t q = 0; q < dev->nr_queues; ++q) {
    // ublk queue q runs on I/O reactor q (ublk::UblkDevice): its path set is replaced there,
    // between two of its requests.
    io::Engine::RunOn(reactors[q % reactors.size()], [&] {
      dev->head->SetQueuePaths(q, raw);
      return 0;
    });
  }
}

void Daemon::AddPath(Device* dev, Conn* conn, uint32_t nsid) {
  auto p = std::make_unique<DevPath>();
  p->conn = conn;
  p->nsid = nsid;
  p->path = std::make_unique<multipath::ControllerPath>(conn->ctrl.get(), nsid, dev->nr_queues);
  {
    std::lock_guard<std::mutex> lock(mu_);
    dev->paths.push_back(std::move(p));
  }
  PublishPaths(dev);
  NLOG(INFO) << (dev->dev ? dev->dev->block_path() : std::string("device")) << ": path "
             << conn->ctrl->name() << " nsid " << nsid << " added (" << dev->paths.size()
             << " path(s))";
}

std::unique_ptr<Daemon::DevPath> Daemon::TakePath(Device* dev, Conn* conn) {
  std::unique_ptr<DevPath> taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(dev->paths.begin(), dev->paths.end(),
                           [&](const auto& p) { return p->conn == conn; });
    if (it == dev->paths.end()) return nullptr;
    taken = std::move(*it);
    dev->paths.erase(it);
  }
  PublishPaths(dev);
  // No new request goes there now; let what is in flight finish where it is (an orderly
  // removal, not a failover: a write cut off here would wait KATO + CQT elsewhere).
  const int64_t give_up = MonotonicNanos() + 10'000'000'000;
  while (taken->path->totals().in_flight > 0 && MonotonicNanos() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  NLOG(INFO) << (dev->dev ? dev->dev->block_path() : std::string("device")) << ": path "
             << taken->path->name() << " removed (" << dev->paths.size() << " left)";
  return taken;
}

absl::Status Daemon::CheckPathMatches(const Device& dev, const Conn& conn,
                                      const io::NamespaceEntry& ns) const {
  const multipath::PathView device{dev.ids, dev.ns, dev.params};
  const multipath::PathView path{
      ns.ids, ns.info,
      multipath::DeviceParamsFor(conn.ctrl->info(), ns.info, conn.ctrl->max_transfer_bytes(),
                                 options_.max_io_bytes)};
  absl::Status s = multipath::CheckAnotherPath(device, path);
  if (s.ok()) return s;
  return absl::Status(
      s.code(),
      absl::StrCat("namespace ", ns.nsid, " through ", conn.args.traddr, ":", conn.args.trsvcid,
                   " (", dev.stable_id, ") cannot be another path of ",
                   dev.dev ? dev.dev->block_path() : std::string("its device"), ": ", s.message()));
}

bool Daemon::StopDevice(Device* dev) {
  if (!dev->dev) return false;
  const int dev_id = static_cast<int>(dev->dev->dev_id());
  // A request waiting for a path fails now: the removal does not wait for a path to return.
  dev->head->FailWaiting();
  if (absl::Status s = dev->dev->Stop(); !s.ok()) {
    NLOG(WARNING) << "stopping " << dev->dev->block_path() << ": " << s;
  }
  if (dev->dev->queues_kept()) {
    // Its queues live on and may still hand requests to the head: the head fails them from now
    // on, and stays (with its paths) for good; once every reactor finished its current turn, no
    // request is on its way to a path, so the controllers may go.
    dev->head->Abandon();
    for (io::Reactor* r : engine_->io_reactors()) io::Engine::RunOn(r, [] { return 0; });
    NLOG(ERROR) << dev->dev->block_path() << ": kept in memory with its queues for good (its "
                << "I/O did not stop); new requests to it fail with EIO";
    auto kept = std::make_shared<Device>();
    kept->head = std::move(dev->head);
    kept->paths = std::move(dev->paths);
    KeepForever(kept);
    dev->dev.reset();
    control::RemovePublishedDevice(options_.state_dir, dev_id);
    return true;
  }
  dev->dev.reset();
  control::RemovePublishedDevice(options_.state_dir, dev_id);
  return false;
}

void Daemon::RemoveKernelDevice(ublk::ControlDevice* ctl, uint32_t dev_id) {
  ctl->StopDevice(dev_id).IgnoreError();
  ctl->DeleteDevice(dev_id).IgnoreError();
  control::RemovePublishedDevice(options_.state_dir, static_cast<int>(dev_id));
}

control::PublishedDevice Daemon::PublishedFor(const Conn& conn, const io::NamespaceEntry& ns,
                                              int dev_id) const {
  control::PublishedDevice p;
  p.dev_id = dev_id;
  p.subnqn = conn.args.subnqn;
  p.nsid = ns.nsid;
  p.nguid = ns.ids.NguidHex();
  p.eui64 = ns.ids.Eui64Hex();
  p.uuid = ns.ids.UuidString();
  p.model = conn.ctrl->info().model;
  p.serial = conn.ctrl->info().serial;
  p.firmware = conn.ctrl->info().firmware;
  return p;
}

absl::StatusOr<std::shared_ptr<Daemon::Device>> Daemon::CreateDevice(Conn* conn,
                                                                     const io::NamespaceEntry& ns,
                                                                     multipath::IoPolicy policy) {
  ASSIGN_OR_RETURN(ublk::ControlDevice * ctl, UblkControl());
  io::Controller* ctrl = conn->ctrl.get();
  auto dev = std::make_shared<Device>();
  dev->subnqn = conn->args.subnqn;
  dev->stable_id = ns.ids.StableId();
  dev->ids = ns.ids;
  dev->ns = ns.info;
  const uint16_t nq = static_cast<uint16_t>(ctrl->io_queue_count());
  dev->nr_queues = nq;
  const uint32_t depth = std::min<uint32_t>(options_.max_queue_depth,
                                            static_cast<uint32_t>(conn->args.queue_size) - 1);
  const ublk::DeviceParams params = multipath::DeviceParamsFor(
      ctrl->info(), ns.info, ctrl->max_transfer_bytes(), options_.max_io_bytes);
  if (params.max_transfer_bytes == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("namespace ", ns.nsid, ": its ", ns.info.lba_bytes,
                     "-byte logical block is larger than one request can carry (--max-io-bytes ",
                     options_.max_io_bytes, ")"));
  }
  dev->params = params;
  if (dev->stable_id.empty()) {
    NLOG(WARNING) << conn->args.subnqn << " namespace " << ns.nsid
                  << " reports no NGUID, EUI-64 or UUID: its device is not shared with other "
                     "paths (each connection to it gets a device of its own)";
  }
  auto p = std::make_unique<DevPath>();
  p->conn = conn;
  p->nsid = ns.nsid;
  p->path = std::make_unique<multipath::ControllerPath>(ctrl, ns.nsid, nq);
  dev->head = std::make_unique<multipath::NamespaceHead>(
      absl::StrCat(conn->args.subnqn, "/", dev->stable_id.empty() ? ctrl->name() : dev->stable_id),
      std::vector<multipath::Path*>{p->path.get()}, ns.info.lba_bytes, nq, depth, policy);
  dev->paths.push_back(std::move(p));
  ublk::DeviceOptions dopt;
  dopt.nr_queues = nq;
  dopt.queue_depth = static_cast<uint16_t>(depth);
  dopt.max_io_bytes = options_.max_io_bytes;
  dopt.stop_timeout_ns = static_cast<int64_t>(options_.stop_timeout_s * 1e9);
  // udev reads this when the disk appears (START_DEV): publish it first.
  int published = -1;
  dopt.before_start = [&](uint32_t dev_id) {
    published = static_cast<int>(dev_id);
    return control::WritePublishedDevice(options_.state_dir, PublishedFor(*conn, ns, published));
  };
  const std::vector<io::Reactor*> reactors = engine_->io_reactors();
  auto created = ublk::UblkDevice::Create(ctl, params, dopt, reactors, dev->head.get());
  if (!created.ok()) {
    if (published >= 0) control::RemovePublishedDevice(options_.state_dir, published);
    return absl::Status(created.status().code(),
                        absl::StrCat("namespace ", ns.nsid, ": ", created.status().message()));
  }
  dev->dev = std::move(*created);
  NLOG(INFO) << dev->dev->block_path() << ": " << conn->args.subnqn << " nsid " << ns.nsid << " ("
             << (dev->stable_id.empty() ? "no identifier" : dev->stable_id) << "), "
             << ublk::ToString(params) << ", I/O policy " << multipath::ToString(policy);
  return dev;
}

DeviceInfo Daemon::InfoOf(const Device& dev) const {
  DeviceInfo d;
  d.stable_id = dev.stable_id;
  d.subnqn = dev.subnqn;
  if (!dev.paths.empty()) {
    d.nsid = dev.paths.front()->nsid;
    const Conn* c = dev.paths.front()->conn;
    d.controller = c->ctrl ? c->ctrl->name() : "";
  }
  if (dev.dev) {
    d.path = dev.dev->block_path();
    d.dev_id = static_cast<int>(dev.dev->dev_id());
    d.size_bytes = dev.dev->params().size_bytes;
    d.logical_block = dev.dev->params().logical_block_size;
  }
  if (dev.head) d.iopolicy = multipath::ToString(dev.head->policy());
  for (const auto& p : dev.paths) {
    PathInfo pi;
    const Conn* c = p->conn;
    pi.controller = c->ctrl ? c->ctrl->name() : c->args.traddr;
    pi.traddr = c->args.traddr;
    pi.trsvcid = c->args.trsvcid;
    pi.cntlid = c->ctrl ? c->ctrl->cntlid() : 0;
    pi.state = io::Controller::ToString(c->state);
    pi.ana_state = nvme::AnaStateName(p->path->ana_state());
    const multipath::Path::Totals t = p->path->totals();
    pi.in_flight = t.in_flight;
    pi.ios = t.ios;
    pi.errors = t.errors;
    pi.latency_us = static_cast<double>(t.latency_ns) / 1000.0;
    d.paths.push_back(std::move(pi));
  }
  return d;
}

void Daemon::Persist() {
  State state;
  std::unique_lock<std::mutex> lock(mu_);
  for (const auto& c : conns_) {
    ConnectionRecord rec{c->args, {}};
    for (const auto& d : devices_) {
      if (!d->dev) continue;
      for (const auto& p : d->paths) {
        if (p->conn != c.get()) continue;
        rec.devices.push_back(DeviceRecord{p->nsid, static_cast<int>(d->dev->dev_id()),
                                           d->stable_id, multipath::ToString(d->head->policy())});
      }
    }
    for (const auto& p : c->pending) rec.devices.push_back(p);
    state.connections.push_back(std::move(rec));
  }
  for (const auto& dc : dcs_) {
    state.discovery.push_back(DiscoveryControllerRecord{dc->id, dc->args, dc->owner});
  }
  lock.unlock();
  if (absl::Status s = SaveState(state_path(), state); !s.ok()) {
    NLOG(ERROR) << "cannot save state (devices will not survive a daemon restart): " << s;
  }
}

absl::StatusOr<Daemon::ConnectOutcome> Daemon::Connect(const ConnectArgs& in) {
  std::lock_guard<std::mutex> ops(ops_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("nvmf-ublkd is stopping");
  }
  ConnectArgs args = in;
  ASSIGN_OR_RETURN(auto id, discovery::ResolveHostIdentity(args.hostnqn, args.hostid));
  args.hostnqn = id.hostnqn;
  args.hostid = id.hostid;
  std::optional<multipath::IoPolicy> policy;
  if (!args.iopolicy.empty()) {
    ASSIGN_OR_RETURN(policy, multipath::ParseIoPolicy(args.iopolicy));
  }
  if (!args.duplicate_connect) {
    // nvme-cli's rule (libnvme's "already connected"): the same subsystem through the same
    // portal, from the same host address and interface, as the same host.
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : conns_) {
      if (c->cancelled || c->args.subnqn != args.subnqn || c->args.traddr != args.traddr ||
          c->args.trsvcid != args.trsvcid || c->args.hostnqn != args.hostnqn ||
          c->args.host_traddr != args.host_traddr || c->args.host_iface != args.host_iface) {
        continue;
      }
      ConnectOutcome out;
      out.already_connected = true;
      out.owner = c->args.owner;
      for (const auto& d : devices_) {
        if (d->dev && Serves(*d, c.get())) out.devices.push_back(InfoOf(*d));
      }
      for (const auto& p : c->pending) {
        if (!FindDeviceById(p.dev_id)) out.devices.push_back(Recovering(*c, p));
      }
      return out;
    }
  }
  // The kernel side first: without ublk there is no point in connecting.
  RETURN_IF_ERROR(UblkControl().status());
  auto owned = std::make_shared<Conn>();
  Conn* conn = owned.get();
  conn->args = args;
  {
    std::lock_guard<std::mutex> lock(mu_);
    conns_.push_back(owned);
  }
  std::vector<std::shared_ptr<Device>> created;  // by this connect
  std::vector<std::shared_ptr<Device>> joined;   // existing devices this connect added a path to
  // Nothing is left behind on a failure: devices created go, paths added are taken out again.
  auto fail = [&](const absl::Status& s) {
    for (auto& d : created) StopDevice(d.get());
    std::vector<std::unique_ptr<DevPath>> taken;
    for (auto& d : joined) {
      if (auto p = TakePath(d.get(), conn)) taken.push_back(std::move(p));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& d : created) devices_.erase(std::find(devices_.begin(), devices_.end(), d));
    }
    created.clear();
    DestroyController(conn);
    RemoveConn(conn);
    return s;
  };
  absl::Status started = StartController(conn, false);
  if (started.ok()) started = WaitLive(conn);
  if (absl::Status s = started; !s.ok()) {
    return fail(absl::Status(s.code(), absl::StrCat("connect ", args.traddr, ":", args.trsvcid, " ",
                                                    args.subnqn, ": ", s.message())));
  }
  if (conn->ctrl->namespaces().empty()) {
    return fail(io::NoUsableNamespaces(args.subnqn, conn->ctrl->refused_namespaces()));
  }
  // Which namespaces are further paths of existing devices: decided (and checked) before
  // anything changes, so a path that disagrees changes nothing.
  std::vector<std::pair<std::shared_ptr<Device>, const io::NamespaceEntry*>> plan;
  for (const auto& ns : conn->ctrl->namespaces()) {
    std::shared_ptr<Device> existing;
    {
      std::lock_guard<std::mutex> lock(mu_);
      existing = FindDeviceByIdentity(args.subnqn, ns.ids.StableId());
    }
    if (existing) {
      if (absl::Status s = CheckPathMatches(*existing, *conn, ns); !s.ok()) return fail(s);
    }
    plan.emplace_back(existing, &ns);
  }
  ConnectOutcome result;
  result.owner = args.owner;
  std::vector<DeviceInfo>& out = result.devices;
  for (const auto& [existing, ns] : plan) {
    std::shared_ptr<Device> dev = existing;
    if (dev) {
      AddPath(dev.get(), conn, ns->nsid);
      joined.push_back(dev);
      if (policy) dev->head->set_policy(*policy);
    } else {
      auto made = CreateDevice(conn, *ns, policy.value_or(multipath::IoPolicy::kRoundRobin));
      if (!made.ok()) return fail(made.status());
      dev = *made;
      created.push_back(dev);
      std::lock_guard<std::mutex> lock(mu_);
      devices_.push_back(dev);
    }
    std::lock_guard<std::mutex> lock(mu_);
    out.push_back(InfoOf(*dev));
  }
  Persist();
  return result;
}

void Daemon::RemoveConns(const std::vector<std::shared_ptr<Conn>>& conns) {
  for (const auto& cp : conns) {
    Conn* c = cp.get();
    std::vector<DeviceRecord> pending;
    {
      std::lock_guard<std::mutex> lock(mu_);
      c->cancelled = true;
      cv_.notify_all();
      pending.swap(c->pending);
    }
    // Devices still waiting for this path's recovery go too (the kernel fails their queued I/O),
    // unless they are served already or another connection may still recover them.
    std::vector<uint32_t> remove;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& p : pending) {
        bool elsewhere = FindDeviceById(p.dev_id) != nullptr;
        for (const auto& other : conns_) {
          if (other.get() == c || other->cancelled) continue;
          for (const auto& op : other->pending) elsewhere |= op.dev_id == p.dev_id;
        }
        if (!elsewhere) remove.push_back(static_cast<uint32_t>(p.dev_id));
      }
    }
    if (auto ctl = UblkControl(); ctl.ok()) {
      for (uint32_t id : remove) RemoveKernelDevice(*ctl, id);
    }
    DestroyController(c);
    RemoveConn(c);
  }
}

absl::StatusOr<std::vector<DeviceInfo>> Daemon::Disconnect(const std::string& subnqn,
                                                           const std::string& device,
                                                           const std::string& traddr,
                                                           const std::string& trsvcid,
                                                           const std::string* owner) {
  std::lock_guard<std::mutex> ops(ops_mu_);
  std::vector<DeviceInfo> removed;
  std::vector<std::shared_ptr<Conn>> conns;      // connections that go
  std::vector<std::shared_ptr<Device>> devices;  // devices that go
  std::vector<std::shared_ptr<Device>> thinned;  // devices that lose paths and stay
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("nvmf-ublkd is stopping");
    if (!device.empty()) {
      for (const auto& d : devices_) {
        if (d->dev && d->dev->block_path() == device) devices.push_back(d);
      }
      if (devices.empty())
        return absl::NotFoundError(absl::StrCat(device, " is not an nvmf-ublk device"));
      // Connections left serving nothing go with it.
      for (const auto& c : conns_) {
        if (!Serves(*devices[0], c.get()) || !c->pending.empty()) continue;
        const bool other = std::any_of(devices_.begin(), devices_.end(), [&](const auto& d) {
          return d != devices[0] && Serves(*d, c.get());
        });
        if (!other) conns.push_back(c);
      }
    } else {
      for (const auto& c : conns_) {
        if (c->args.subnqn == subnqn && (traddr.empty() || c->args.traddr == traddr) &&
            (trsvcid.empty() || c->args.trsvcid == trsvcid) &&
            (owner == nullptr || c->args.owner == *owner)) {
          conns.push_back(c);
        }
      }
      if (conns.empty()) {
        return absl::NotFoundError(traddr.empty()
                                       ? absl::StrCat("no connection to ", subnqn)
                                       : absl::StrCat("no path to ", subnqn, " through ", traddr,
                                                      trsvcid.empty() ? "" : ":", trsvcid));
      }
      auto going = [&](const Conn* c) {
        return std::any_of(conns.begin(), conns.end(), [&](const auto& g) { return g.get() == c; });
      };
      for (const auto& d : devices_) {
        const bool touched = std::any_of(d->paths.begin(), d->paths.end(),
                                         [&](const auto& p) { return going(p->conn); });
        if (!touched) continue;
        const bool keeps = std::any_of(d->paths.begin(), d->paths.end(),
                                       [&](const auto& p) { return !going(p->conn); });
        (keeps ? thinned : devices).push_back(d);
      }
    }
  }
  for (const auto& d : devices) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      removed.push_back(InfoOf(*d));
    }
    removed.back().state = StopDevice(d.get()) ? "given-up" : "removed";
    std::lock_guard<std::mutex> lock(mu_);
    devices_.erase(std::find(devices_.begin(), devices_.end(), d));
  }
  std::vector<std::unique_ptr<DevPath>> taken;
  for (const auto& d : thinned) {
    for (const auto& c : conns) {
      if (auto p = TakePath(d.get(), c.get())) taken.push_back(std::move(p));
    }
  }
  RemoveConns(conns);
  // Each reactor finished the turn in which it may last have looked at a taken path.
  for (io::Reactor* r : engine_->io_reactors()) io::Engine::RunOn(r, [] { return 0; });
  taken.clear();
  Persist();
  return removed;
}

absl::Status Daemon::SetIoPolicy(const std::string& device, const std::string& policy) {
  ASSIGN_OR_RETURN(multipath::IoPolicy p, multipath::ParseIoPolicy(policy));
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<Device> dev;
    for (const auto& d : devices_) {
      if (d->dev && d->dev->block_path() == device) dev = d;
    }
    if (!dev) return absl::NotFoundError(absl::StrCat(device, " is not an nvmf-ublk device"));
    dev->head->set_policy(p);
  }
  NLOG(INFO) << device << ": I/O policy " << policy;
  Persist();
  return absl::OkStatus();
}

// A device of the state file that `conn` has not recovered yet.
DeviceInfo Daemon::Recovering(const Conn& conn, const DeviceRecord& rec) const {
  DeviceInfo d;
  d.path = absl::StrCat("/dev/ublkb", rec.dev_id);
  d.dev_id = rec.dev_id;
  d.nsid = rec.nsid;
  d.stable_id = rec.stable_id;
  d.subnqn = conn.args.subnqn;
  d.controller = conn.ctrl ? conn.ctrl->name() : conn.args.traddr;
  d.state = "recovering";
  d.iopolicy = rec.iopolicy.empty() ? "round-robin" : rec.iopolicy;
  return d;
}

std::vector<ControllerSummary> Daemon::List() {
  std::vector<ControllerSummary> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : conns_) {
    ControllerSummary s;
    s.name = c->ctrl ? c->ctrl->name() : c->args.traddr;
    s.subnqn = c->args.subnqn;
    s.traddr = c->args.traddr;
    s.trsvcid = c->args.trsvcid;
    s.state = io::Controller::ToString(c->state);
    s.owner = c->args.owner;
    if (c->ctrl) {
      s.reconnects = c->ctrl->reconnects();
      s.cntlid = c->ctrl->cntlid();
    }
    for (const auto& d : devices_) {
      if (Serves(*d, c.get())) s.devices.push_back(InfoOf(*d));
    }
    for (const auto& p : c->pending) s.devices.push_back(Recovering(*c, p));
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<DeviceInfo> Daemon::ListDevices() {
  std::vector<DeviceInfo> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& d : devices_) {
    if (d->dev) out.push_back(InfoOf(*d));
  }
  // Devices of the state file that no connection has recovered yet: once each.
  for (const auto& c : conns_) {
    for (const auto& p : c->pending) {
      if (FindDeviceById(p.dev_id)) continue;
      if (std::any_of(out.begin(), out.end(),
                      [&](const auto& o) { return o.dev_id == p.dev_id; })) {
        continue;
      }
      out.push_back(Recovering(*c, p));
    }
  }
  return out;
}

DeviceCounts Daemon::Counts() {
  DeviceCounts n;
  std::lock_guard<std::mutex> lock(mu_);
  n.live = static_cast<int>(devices_.size());
  std::vector<int> waiting;
  for (const auto& c : conns_) {
    for (const auto& p : c->pending) {
      if (!FindDeviceById(p.dev_id) &&
          std::find(waiting.begin(), waiting.end(), p.dev_id) == waiting.end()) {
        waiting.push_back(p.dev_id);
      }
    }
  }
  n.recovering = static_cast<int>(waiting.size());
  return n;
}

}  // namespace nvmf_ublk::daemon
