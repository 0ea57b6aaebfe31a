// nvmf-ublkd's discovery-driven operation: connect-all (a discovery log, referrals followed, every
// NVM subsystem record connected, idempotently) and persistent discovery controllers, which keep
// the log's records connected and disconnect the ones they connected that left the log
// (discovery/reconcile.h decides; this file acts). Split from daemon.cc by responsibility.
#include <algorithm>
#include <chrono>
#include <future>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"
#include "control/protocol.h"
#include "daemon/daemon.h"
#include "daemon/daemon_parts.h"
#include "discovery/discover.h"
#include "discovery/host_identity.h"
#include "nvme/spec.h"

namespace nvmf_ublk::daemon {
namespace {

constexpr int64_t kSec = 1'000'000'000;

std::string DcId(const ConnectArgs& a) {
  std::string id = absl::StrCat(a.traddr, ":", a.trsvcid);
  if (!a.host_traddr.empty()) absl::StrAppend(&id, " from ", a.host_traddr);
  if (!a.host_iface.empty()) absl::StrAppend(&id, " dev ", a.host_iface);
  return id;
}

// The connection a record asks for: the record's subsystem and portal, the request's options.
ConnectArgs RecordArgs(const ConnectArgs& options, const nvme::DiscoveryEntry& e,
                       const std::string& owner) {
  ConnectArgs a = options;
  // TREQ "SQ flow control disable supported": asked for, as nvme-cli's connect-all does.
  if (e.treq & 0x4) a.disable_sqflow = true;
  a.subnqn = e.subnqn;
  a.traddr = e.traddr;
  a.trsvcid = e.trsvcid.empty() ? "4420" : e.trsvcid;
  a.owner = owner;
  return a;
}

io::ControllerOptions DcOptions(const ConnectArgs& a);

}  // namespace

absl::StatusOr<ConnectAllResult> Daemon::ConnectAll(const ConnectAllArgs& in) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("nvmf-ublkd is stopping");
  }
  ConnectAllArgs req = in;
  ASSIGN_OR_RETURN(auto id, discovery::ResolveHostIdentity(req.args.hostnqn, req.args.hostid));
  req.args.hostnqn = id.hostnqn;
  req.args.hostid = id.hostid;
  req.args.subnqn = nvme::kDiscoveryNqn;
  RETURN_IF_ERROR(UblkControl().status());  // nothing to connect without ublk
  const std::string dc_id = DcId(req.args);

  // Persistent: the connections it makes belong to the discovery controller (an existing one
  // for the same address, or a new one).
  std::shared_ptr<Dc> dc;
  if (req.persistent) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& d : dcs_) {
      if (d->id == dc_id) dc = d;
    }
    if (dc && dc->args.args.hostnqn != req.args.hostnqn) {
      return absl::AlreadyExistsError(absl::StrCat("a persistent discovery controller at ", dc_id,
                                                   " exists for host ", dc->args.args.hostnqn));
    }
  }

  io::ControllerOptions base = ControllerOptionsFor(req.args);
  base.discovery = true;
  base.subnqn = nvme::kDiscoveryNqn;
  auto logs = discovery::DiscoverWithReferrals(engine_.get(), base, req.max_controllers);
  if (!logs.ok()) {
    std::string msg = absl::StrCat("discovery controller ", req.args.traddr, ":", req.args.trsvcid,
                                   ": ", logs.status().message());
    // A persistent discovery controller that cannot be reached now (the target not up yet at
    // boot, a network still coming up) is kept and retried, as it would be once it was live.
    const absl::StatusCode code = logs.status().code();
    if (req.persistent &&
        (code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded)) {
      if (dc) {
        absl::StrAppend(&msg, " (the persistent discovery controller keeps retrying)");
      } else if (AddDc(req, dc_id, {})) {
        absl::StrAppend(&msg,
                        " (kept as a persistent discovery controller: retried in the "
                        "background, its subsystems connected once it answers)");
      }
    }
    return absl::Status(code, msg);
  }
  ConnectAllResult result;
  std::vector<std::vector<nvme::DiscoveryEntry>> entries;
  for (const auto& l : *logs) {
    const std::string where = absl::StrCat(l.traddr, ":", l.trsvcid);
    result.controllers.push_back(where);
    if (!l.status.ok()) {
      result.controller_errors.push_back(absl::StrCat(where, ": ", l.status.message()));
      continue;
    }
    entries.push_back(l.entries);
  }
  std::vector<std::string> skipped;
  const std::vector<nvme::DiscoveryEntry> records =
      discovery::ConnectableRecords(entries, &skipped);
  for (const std::string& s : skipped) {
    result.records.push_back(RecordResult{"", "", "", "skipped", s, {}});
  }

  const std::string owner = req.persistent ? "discovery:" + dc_id : req.args.owner;
  std::vector<nvme::DiscoveryEntry> owned;
  for (const auto& e : records) {
    RecordResult rr{e.subnqn, e.traddr, e.trsvcid, "connected", "", {}};
    ConnectArgs args = RecordArgs(req.args, e, owner);
    auto r = Connect(args);
    if (!r.ok()) {
      rr.result = "failed";
      rr.error = std::string(r.status().message());
      NLOG(WARNING) << "connect-all " << dc_id << ": " << e.subnqn << " at " << e.traddr << ":"
                    << e.trsvcid << ": " << r.status();
    } else {
      if (r->already_connected) rr.result = "already-connected";
      if (!r->already_connected || r->owner == owner) owned.push_back(e);
      for (const auto& d : r->devices) {
        rr.devices.push_back(d.path);
        const bool seen = std::any_of(result.devices.begin(), result.devices.end(),
                                      [&](const DeviceInfo& x) { return x.dev_id == d.dev_id; });
        if (!seen) result.devices.push_back(d);
      }
    }
    result.records.push_back(std::move(rr));
  }
  if (!req.persistent) return result;

  result.discovery_id = dc_id;
  if (dc) {
    std::lock_guard<std::mutex> dl(dc->mu);
    for (const auto& e : owned) dc->rec.Adopt(e);
    dc->reread = true;
    dc->cv.notify_all();
    return result;
  }
  AddDc(req, dc_id, owned);
  return result;
}

bool Daemon::AddDc(const ConnectAllArgs& req, const std::string& dc_id,
                   const std::vector<nvme::DiscoveryEntry>& owned) {
  auto dc = std::make_shared<Dc>();
  dc->id = dc_id;
  dc->args = req;
  dc->args.args.owner.clear();
  dc->owner = req.args.owner;
  dc->rec = discovery::Reconciler(
      discovery::ReconcileOptions{int64_t{req.grace_s} * kSec, 2 * kSec, 300 * kSec});
  for (const auto& e : owned) dc->rec.Adopt(e);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    for (const auto& d : dcs_) {
      if (d->id == dc_id) return false;  // a concurrent connect-all made it
    }
    dcs_.push_back(dc);
  }
  {
    std::lock_guard<std::mutex> ops(ops_mu_);
    Persist();
  }
  StartDc(dc);
  return true;
}

namespace {
io::ControllerOptions DcOptions(const ConnectArgs& a) {
  io::ControllerOptions o;
  o.discovery = true;
  o.subnqn = nvme::kDiscoveryNqn;
  o.traddr = a.traddr;
  o.trsvcid = a.trsvcid;
  o.host_traddr = a.host_traddr;
  o.host_iface = a.host_iface;
  o.hostnqn = a.hostnqn;
  if (auto id = discovery::ParseUuid(a.hostid); id.ok()) o.hostid = *id;
  o.kato_s = a.keep_alive_tmo;  // -1: 30 s for a discovery controller
  o.hdr_digest = a.hdr_digest;
  o.data_digest = a.data_digest;
  if (auto dhchap = control::DhchapConfigFor(a); dhchap.ok()) o.dhchap = *dhchap;
  if (auto tls = control::TlsPskFor(a); tls.ok()) o.tls_psk = *tls;
  o.tos = a.tos;
  // Kept until disconnect-all: reconnect forever, backing off from reconnect_delay to 60 s.
  o.reconnect_delay_s = a.reconnect_delay;
  o.reconnect_backoff_max_s = 60;
  o.ctrl_loss_tmo_s = -1;
  o.retry_initial_connect = true;
  return o;
}
}  // namespace

void Daemon::StartDc(const std::shared_ptr<Dc>& dc) {
  dc->thread = std::thread([this, dc] { RunDc(dc.get()); });
}

// Caller holds mu_. `state` -1: not a state change; `log_changed`: a discovery log change event.
bool Daemon::OnDcEvent(io::Controller* ctrl, int state, const absl::Status& why, bool log_changed) {
  for (const auto& dc : dcs_) {
    if (dc->ctrl.get() != ctrl) continue;
    std::lock_guard<std::mutex> dl(dc->mu);
    if (state >= 0) {
      if (state == io::Controller::kLive) {
        NLOG(INFO) << "discovery controller " << dc->id << " is live";
        dc->reason = absl::OkStatus();
        dc->reread = true;  // whatever changed while it was away
      } else if (!why.ok()) {
        dc->reason = why;
      }
      dc->state = state;
    }
    if (log_changed) dc->reread = true;
    dc->cv.notify_all();
    return true;
  }
  return false;
}

void Daemon::RunDc(Dc* dc) {
  {
    io::Reactor* control = engine_->control();
    const io::ControllerOptions o = DcOptions(dc->args.args);
    absl::Status s = io::Engine::RunOn(control, [&] {
      auto ctrl = std::make_unique<io::Controller>(o, control, std::vector<io::Reactor*>{},
                                                   static_cast<io::ControllerListener*>(this));
      io::Controller* raw = ctrl.get();
      {
        std::lock_guard<std::mutex> lock(mu_);
        dc->ctrl = std::move(ctrl);
      }
      return raw->Start();
    });
    if (!s.ok()) {
      std::lock_guard<std::mutex> dl(dc->mu);
      dc->reason = s;
      NLOG(ERROR) << "discovery controller " << dc->id << ": " << s;
    }
  }
  std::unique_lock<std::mutex> dl(dc->mu);
  while (!dc->stop) {
    const int64_t deadline = dc->rec.NextDeadline();
    const bool live = dc->state == io::Controller::kLive;
    auto due = [&] {
      return dc->stop || (dc->reread && dc->state == io::Controller::kLive) ||
             (deadline != 0 && MonotonicNanos() >= deadline);
    };
    if (!due()) {
      const int64_t wait_ns =
          deadline == 0 ? 3600 * kSec : std::max<int64_t>(deadline - MonotonicNanos(), 1'000'000);
      dc->cv.wait_for(dl, std::chrono::nanoseconds(wait_ns), due);
      continue;
    }
    if (dc->stop) break;
    const bool read = dc->reread && live;
    if (read) dc->reread = false;
    dl.unlock();
    if (read) ReadDcLog(dc);
    dl.lock();
    if (dc->stop) break;
    const std::vector<discovery::Reconciler::Action> actions = dc->rec.Poll(MonotonicNanos());
    dl.unlock();
    for (const auto& a : actions) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
      }
      const discovery::RecordKey key = discovery::KeyOf(a.entry);
      if (a.kind == discovery::Reconciler::Action::kConnect) {
        auto r = Connect(RecordArgs(dc->args.args, a.entry, dc->ConnOwner()));
        if (r.ok()) {
          NLOG(INFO) << "discovery controller " << dc->id << ": " << key.ToString() << ": "
                     << (r->already_connected ? "already connected" : "connected") << " ("
                     << r->devices.size() << " device(s))";
        } else {
          NLOG(WARNING) << "discovery controller " << dc->id << ": " << key.ToString() << ": "
                        << r.status();
        }
        std::lock_guard<std::mutex> l(dc->mu);
        dc->rec.OnConnectResult(key, r.status(),
                                r.ok() && (!r->already_connected || r->owner == dc->ConnOwner()),
                                MonotonicNanos());
      } else {
        const std::string owner = dc->ConnOwner();
        NLOG(WARNING) << "discovery controller " << dc->id << ": " << key.ToString()
                      << " left the discovery log " << dc->args.grace_s
                      << " s ago or more: disconnecting it";
        auto r = Disconnect(key.subnqn, "", key.traddr, key.trsvcid, &owner);
        if (!r.ok() && r.status().code() != absl::StatusCode::kNotFound) {
          NLOG(ERROR) << "discovery controller " << dc->id << ": disconnect " << key.ToString()
                      << ": " << r.status();
        }
      }
    }
    dl.lock();
  }
}

void Daemon::ReadDcLog(Dc* dc) {
  io::Reactor* control = engine_->control();
  std::promise<absl::StatusOr<std::vector<nvme::DiscoveryEntry>>> p;
  auto fut = p.get_future();
  control->Post([&] {
    io::Controller* ctrl = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ctrl = dc->ctrl.get();
    }
    if (ctrl == nullptr || ctrl->state() != io::Controller::kLive) {
      p.set_value(absl::UnavailableError("the discovery controller is not live"));
      return;
    }
    ctrl->ReadDiscoveryLog(
        [&p](absl::StatusOr<std::vector<nvme::DiscoveryEntry>> r) { p.set_value(std::move(r)); });
  });
  absl::StatusOr<std::vector<nvme::DiscoveryEntry>> log = fut.get();
  if (!log.ok()) {
    NLOG(WARNING) << "discovery controller " << dc->id << ": reading the log: " << log.status();
    std::lock_guard<std::mutex> dl(dc->mu);
    dc->read_error = log.status();
    dc->reread = true;  // again when it is live again (a failed read resets the association)
    return;
  }
  discovery::DiscoveryLogResult first;
  first.traddr = dc->args.args.traddr;
  first.trsvcid = dc->args.args.trsvcid;
  first.genctr = dc->ctrl->discovery_genctr();
  first.entries = std::move(*log);
  io::ControllerOptions base = ControllerOptionsFor(dc->args.args);
  auto logs =
      discovery::DiscoverWithReferrals(engine_.get(), base, dc->args.max_controllers, &first);
  std::vector<std::vector<nvme::DiscoveryEntry>> entries;
  bool complete = logs.ok();
  if (logs.ok()) {
    for (const auto& l : *logs) {
      // A referred controller that cannot be read: its records are unknown, so nothing of what
      // the others do not list may vanish this time.
      if (!l.status.ok()) complete = false;
      entries.push_back(l.entries);
    }
  }
  const std::vector<nvme::DiscoveryEntry> records = discovery::ConnectableRecords(entries);
  // Connections this controller made that someone disconnected by hand: forgotten (connected
  // again only when a later log lists them).
  std::vector<discovery::RecordKey> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::lock_guard<std::mutex> dl(dc->mu);
    for (const auto& k : dc->rec.Owned()) {
      const bool exists = std::any_of(conns_.begin(), conns_.end(), [&](const auto& c) {
        return !c->cancelled && c->args.owner == dc->ConnOwner() && c->args.subnqn == k.subnqn &&
               c->args.traddr == k.traddr && c->args.trsvcid == k.trsvcid;
      });
      if (!exists) gone.push_back(k);
    }
  }
  std::lock_guard<std::mutex> dl(dc->mu);
  for (const auto& k : gone) dc->rec.Forget(k);
  dc->genctr = first.genctr;
  dc->read_error = absl::OkStatus();
  if (complete) {
    dc->rec.OnLog(records, MonotonicNanos());
  } else {
    // Connect what is listed; let nothing vanish on a partial view.
    std::vector<nvme::DiscoveryEntry> merged = records;
    for (const auto& k : dc->rec.Owned()) {
      nvme::DiscoveryEntry e;
      e.subnqn = k.subnqn;
      e.traddr = k.traddr;
      e.trsvcid = k.trsvcid;
      e.trtype = 3;
      e.subtype = nvme::kSubtypeNvme;
      if (std::none_of(merged.begin(), merged.end(),
                       [&](const auto& m) { return discovery::KeyOf(m) == k; })) {
        merged.push_back(e);
      }
    }
    dc->rec.OnLog(merged, MonotonicNanos());
  }
  NLOG(INFO) << "discovery controller " << dc->id << ": log generation " << first.genctr << ", "
             << records.size() << " NVM subsystem record(s)";
}

void Daemon::StopDcs(const std::vector<std::shared_ptr<Dc>>& dcs) {
  for (const auto& dc : dcs) {
    {
      std::lock_guard<std::mutex> dl(dc->mu);
      dc->stop = true;
      dc->cv.notify_all();
    }
    if (dc->thread.joinable()) dc->thread.join();
    ShutDownAndDestroy(&dc->ctrl);
    std::lock_guard<std::mutex> lock(mu_);
    dcs_.erase(std::remove(dcs_.begin(), dcs_.end(), dc), dcs_.end());
  }
}

absl::StatusOr<std::vector<DeviceInfo>> Daemon::DisconnectAll(const std::string& owner) {
  std::vector<std::shared_ptr<Dc>> dcs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("nvmf-ublkd is stopping");
    for (const auto& dc : dcs_) {
      if (owner.empty() || dc->owner == owner) dcs.push_back(dc);
    }
  }
  // The discovery controllers first, so that none connects anything again meanwhile.
  std::vector<std::string> owners;
  for (const auto& dc : dcs) owners.push_back(dc->ConnOwner());
  if (!owner.empty()) owners.push_back(owner);
  StopDcs(dcs);
  for (const auto& dc : dcs) NLOG(INFO) << "discovery controller " << dc->id << " removed";
  std::vector<std::pair<std::string, std::string>> targets;  // (subnqn, owner)
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : conns_) {
      if (!owner.empty() &&
          std::find(owners.begin(), owners.end(), c->args.owner) == owners.end()) {
        continue;
      }
      const std::pair<std::string, std::string> t{c->args.subnqn, c->args.owner};
      if (std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
    }
  }
  std::vector<DeviceInfo> removed;
  for (const auto& [nqn, conn_owner] : targets) {
    auto r = Disconnect(nqn, "", "", "", owner.empty() ? nullptr : &conn_owner);
    if (!r.ok() && r.status().code() != absl::StatusCode::kNotFound) return r.status();
    if (r.ok()) removed.insert(removed.end(), r->begin(), r->end());
  }
  {
    std::lock_guard<std::mutex> ops(ops_mu_);
    Persist();
  }
  return removed;
}

std::vector<DiscoveryControllerInfo> Daemon::ListDiscovery() {
  std::vector<DiscoveryControllerInfo> out;
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = MonotonicNanos();
  for (const auto& dc : dcs_) {
    DiscoveryControllerInfo info;
    info.id = dc->id;
    info.traddr = dc->args.args.traddr;
    info.trsvcid = dc->args.args.trsvcid;
    info.owner = dc->owner;
    info.grace_s = dc->args.grace_s;
    if (dc->ctrl) info.reconnects = dc->ctrl->reconnects();
    std::lock_guard<std::mutex> dl(dc->mu);
    info.state = io::Controller::ToString(dc->state);
    info.genctr = dc->genctr;
    if (!dc->reason.ok()) {
      info.error = std::string(dc->reason.message());
    } else if (!dc->read_error.ok()) {
      info.error = std::string(dc->read_error.message());
    }
    for (const auto& r : dc->rec.Status()) {
      DiscoveryRecordInfo ri;
      ri.subnqn = r.key.subnqn;
      ri.traddr = r.key.traddr;
      ri.trsvcid = r.key.trsvcid;
      ri.state = discovery::Reconciler::ToString(r.state);
      ri.failures = r.failures;
      if (!r.last_error.ok()) ri.error = std::string(r.last_error.message());
      if (r.state == discovery::Reconciler::State::kWanted && r.next_try_ns > now) {
        ri.retry_in_s = static_cast<double>(r.next_try_ns - now) / kSec;
      }
      if (r.state == discovery::Reconciler::State::kVanishing) {
        ri.vanishing_for_s = static_cast<double>(now - r.missing_since_ns) / kSec;
      }
      info.records.push_back(std::move(ri));
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace nvmf_ublk::daemon
