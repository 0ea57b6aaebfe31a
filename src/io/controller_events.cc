// Controller: the ANA state of its namespaces (ANA log at bring-up, on ANA change notices and
// after path errors; ANATT), namespace attribute changes (Changed Namespace List, Identify), and
// keep-alive with the admin timeout check (TBKAS; a late answer while I/O completes).
// Split from controller.cc by responsibility; the threading rules of controller.h apply.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/endian.h"
#include "base/log.h"
#include "io/controller.h"
#include "io/io_queue.h"
#include "nvme/commands.h"

namespace nvmf_ublk::io {
namespace {

constexpr int64_t kSec = 1'000'000'000;

}  // namespace

std::shared_ptr<AnaCell> Controller::ana_cell(uint32_t nsid) {
  std::lock_guard<std::mutex> lock(ana_mu_);
  auto& cell = ana_cells_[nsid];
  if (!cell) cell = std::make_shared<AnaCell>();
  return cell;
}

void Controller::RequestAnaRefresh(uint32_t nsid) {
  if (!ana_reporting_.load(std::memory_order_relaxed)) return;
  ana_cell(nsid)->refreshing.store(true, std::memory_order_relaxed);
  // From an I/O reactor: the controller may be destroyed (on the admin reactor) before this runs.
  admin_reactor_->Post([this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.lock()) RefreshAna();
  });
}

void Controller::RefreshAna() {
  if (state_ != kLive) {
    // No admin queue to ask: the bring-up reads the log anyway; meanwhile the connection state
    // decides whether the path is usable.
    ClearAnaRefreshing();
    return;
  }
  ReadAnaLog([this](const absl::Status& s) {
    if (!s.ok()) NLOG(WARNING) << name() << ": " << s;
  });
}

void Controller::ClearAnaRefreshing() {
  std::lock_guard<std::mutex> lock(ana_mu_);
  for (auto& [nsid, cell] : ana_cells_) cell->refreshing.store(false, std::memory_order_relaxed);
}

void Controller::ReadAnaLog(std::function<void(const absl::Status&)> done) {
  if (ana_reading_) {
    ana_again_ = true;
    done(absl::OkStatus());
    return;
  }
  ana_reading_ = true;
  ana_again_ = false;
  const uint32_t groups = std::max(info_.nanagrpid, info_.anagrpmax);
  uint32_t len = nvme::AnaLogMaxBytes(groups == 0 ? 1 : groups, info_.nn);
  // One command carries it: MDTS (and a sane bound) cap what is asked for; a log longer than
  // that fails to parse, with the reason.
  constexpr uint32_t kMaxAnaLog = 1u << 20;
  len = std::min(len, kMaxAnaLog);
  if (max_transfer_ != 0) len = static_cast<uint32_t>(std::min<uint64_t>(len, max_transfer_));
  len = std::max<uint32_t>(len & ~3u, 16);
  ana_buf_.assign(len, 0);
  const uint64_t epoch = epoch_;
  SubmitAdmin(nvme::BuildGetLogPage(nvme::LogPageId::kAna, 0xFFFFFFFF, 0, len), ana_buf_.data(),
              len, [this, epoch, done = std::move(done)](const IoResult& r) {
                ana_reading_ = false;
                if (epoch != epoch_) {
                  ClearAnaRefreshing();
                  return;
                }
                ana_reads_.fetch_add(1, std::memory_order_relaxed);
                absl::Status s;
                if (!r.ok()) {
                  s = r.ToStatus("Get Log Page (ANA)");
                } else {
                  auto log = nvme::ParseAnaLog(ana_buf_.data(), ana_buf_.size());
                  if (log.ok()) {
                    ApplyAnaLog(*log);
                  } else {
                    s = absl::Status(log.status().code(),
                                     absl::StrCat("ANA log: ", log.status().message()));
                  }
                }
                ClearAnaRefreshing();
                const bool again = ana_again_ && state_ == kLive;
                done(s);
                if (again) RefreshAna();
              });
}

void Controller::ApplyAnaLog(const nvme::AnaLog& log) {
  std::unordered_map<uint32_t, const nvme::AnaGroup*> by_nsid;
  for (const nvme::AnaGroup& g : log.groups) {
    for (uint32_t nsid : g.nsids) by_nsid[nsid] = &g;
  }
  for (const uint32_t nsid : nsids_) ana_cell(nsid);  // every active namespace has a cell
  const int64_t now = MonotonicNanos();
  bool in_change = false;
  std::lock_guard<std::mutex> lock(ana_mu_);
  for (auto& [nsid, cell] : ana_cells_) {
    auto it = by_nsid.find(nsid);
    // A namespace the log does not list is not accessible through this controller.
    const uint8_t state = it == by_nsid.end() ? nvme::kAnaInaccessible : it->second->state;
    const uint8_t old = cell->state.load(std::memory_order_relaxed);
    if (it != by_nsid.end()) cell->group.store(it->second->grpid, std::memory_order_relaxed);
    if (state != old) {
      NLOG(INFO) << name() << ": namespace " << nsid << " ANA " << nvme::AnaStateName(old) << " -> "
                 << nvme::AnaStateName(state);
      cell->state.store(state, std::memory_order_relaxed);
      cell->change_since_ns = state == nvme::kAnaChange ? now : 0;
    }
    if (state == nvme::kAnaChange) in_change = true;
  }
  if (in_change && !anatt_timer_) {
    const int64_t anatt = int64_t{info_.anatt == 0 ? 10 : info_.anatt} * kSec;
    anatt_timer_ = admin_reactor_->AddTimerAfter(anatt, [this] {
      anatt_timer_ = 0;
      CheckAnaTransition();
    });
  }
}

void Controller::RefreshNamespaces() {
  if (state_ != kLive) return;  // a bring-up identifies every namespace anyway
  if (ns_refreshing_) {
    ns_again_ = true;
    return;
  }
  ns_refreshing_ = true;
  ns_again_ = false;
  ns_buf_.assign(4096, 0);
  const uint64_t epoch = epoch_;
  SubmitAdmin(nvme::BuildGetLogPage(nvme::LogPageId::kChangedNamespaceList, 0xFFFFFFFF, 0, 4096),
              ns_buf_.data(), 4096, [this, epoch](const IoResult& r) {
                if (epoch != epoch_) {
                  ns_refreshing_ = false;
                  return;
                }
                // Up to 1024 NSIDs, zero-terminated; FFFFFFFFh first: more changed than that.
                std::vector<uint32_t> changed;
                bool all = !r.ok();
                for (size_t i = 0; r.ok() && i + 4 <= ns_buf_.size(); i += 4) {
                  const uint32_t nsid = LoadLe32(ns_buf_.data() + i);
                  if (nsid == 0) break;
                  if (nsid == 0xFFFFFFFF) {
                    all = true;
                    break;
                  }
                  changed.push_back(nsid);
                }
                if (!r.ok()) {
                  NLOG(WARNING) << name() << ": "
                                << r.ToStatus(
                                       "Get Log Page (Changed Namespace "
                                       "List)")
                                << "; identifying every namespace again";
                }
                std::vector<uint32_t> known;
                for (const auto& e : namespaces_) {
                  if (all || std::find(changed.begin(), changed.end(), e.nsid) != changed.end()) {
                    known.push_back(e.nsid);
                  }
                }
                IdentifyChanged(std::move(known), 0);
              });
}

void Controller::IdentifyChanged(std::vector<uint32_t> nsids, size_t index) {
  if (index >= nsids.size() || state_ != kLive) {
    ns_refreshing_ = false;
    if (ns_again_ && state_ == kLive) RefreshNamespaces();
    return;
  }
  const uint32_t nsid = nsids[index];
  ns_buf_.assign(4096, 0);
  const uint64_t epoch = epoch_;
  SubmitAdmin(nvme::BuildIdentify(nvme::IdentifyCns::kNamespace, nsid), ns_buf_.data(), 4096,
              [this, epoch, nsids = std::move(nsids), index, nsid](const IoResult& r) mutable {
                if (epoch != epoch_) {
                  ns_refreshing_ = false;
                  return;
                }
                const NamespaceEntry* old = nullptr;
                for (const auto& e : namespaces_) {
                  if (e.nsid == nsid) old = &e;
                }
                auto ns = r.ok() ? nvme::ParseIdentifyNamespace(ns_buf_.data(), ns_buf_.size())
                                 : absl::StatusOr<nvme::NamespaceInfo>(r.ToStatus("Identify"));
                if (!ns.ok() || old == nullptr) {
                  NLOG(WARNING) << name() << ": namespace " << nsid << " changed; Identify: "
                                << (ns.ok() ? absl::OkStatus() : ns.status());
                } else {
                  NamespaceEntry now = *old;
                  now.info = *ns;
                  if (now.info.nsze != old->info.nsze) {
                    NLOG(INFO) << name() << ": namespace " << nsid << " now has " << now.info.nsze
                               << " blocks (was " << old->info.nsze << ")";
                  }
                  listener_->OnNamespaceChanged(this, now);
                }
                IdentifyChanged(std::move(nsids), index + 1);
              });
}

void Controller::CheckAnaTransition() {
  if (state_ != kLive) return;
  ReadAnaLog([this](const absl::Status& s) {
    if (!s.ok() || state_ != kLive) return;
    const int64_t anatt = int64_t{info_.anatt == 0 ? 10 : info_.anatt} * kSec;
    const int64_t now = MonotonicNanos();
    uint32_t stuck = 0;
    {
      std::lock_guard<std::mutex> lock(ana_mu_);
      for (auto& [nsid, cell] : ana_cells_) {
        if (cell->state.load(std::memory_order_relaxed) == nvme::kAnaChange &&
            cell->change_since_ns != 0 && now - cell->change_since_ns >= anatt) {
          stuck = nsid;
        }
      }
    }
    if (stuck != 0) {
      ErrorRecovery(absl::UnavailableError(
          absl::StrCat("namespace ", stuck, " stayed in ANA state change longer than ANATT (",
                       anatt / kSec, " s)")));
    }
  });
}

// --- Keep-alive and the admin timeout check --------------------------------------------------

uint64_t Controller::IoAnswers() const {
  uint64_t n = 0;
  for (const auto& q : io_queues_) {
    if (q) n += q->answers();
  }
  return n;
}

void Controller::KeepAlive() {
  keep_alive_timer_ = 0;
  if (state_ != kLive) return;
  keep_alive_timer_ =
      admin_reactor_->AddTimerAfter(options_.kato_s * kSec / 2, [this] { KeepAlive(); });
  const uint64_t answers = IoAnswers();
  const bool traffic = answers != ka_answers_;
  ka_answers_ = answers;
  if (keep_alive_outstanding_) return;  // the previous one is still out; its timeout decides
  // Traffic-based keep-alive: such a controller restarts its timer on every command it
  // processes, and it answered I/O in this half period (the kernel host skips it too).
  if ((info_.ctratt & nvme::kCtrattTbkas) && traffic) return;
  keep_alive_outstanding_ = true;
  ka_sent_answers_ = answers;
  SubmitAdmin(
      nvme::BuildKeepAlive(), nullptr, 0,
      [this](const IoResult& r) {
        keep_alive_outstanding_ = false;
        if (r.err == 0 && !r.ok()) ErrorRecovery(r.ToStatus("Keep Alive"));
      },
      /*timeout_ns=*/options_.kato_s * kSec, /*keep_alive=*/true);
}

void Controller::AdminTick() {
  tick_timer_ = 0;
  const int64_t now = MonotonicNanos();
  bool timed = false;  // a command that can time out is still out
  for (auto& [cookie, p] : admin_pending_) {
    if (p.deadline_ns != 0) timed = true;
    if (p.deadline_ns == 0 || now <= p.deadline_ns) continue;
    if (p.keep_alive) {
      // A Keep Alive answered late is not a dead controller while it answers I/O: the answer
      // may wait behind a busy target's I/O. Wait another KATO for as long as I/O completes.
      const uint64_t answers = IoAnswers();
      if (answers != ka_sent_answers_) {
        NLOG(WARNING) << name() << ": Keep Alive unanswered after " << options_.kato_s
                      << " s while I/O completes: waiting for it";
        ka_sent_answers_ = answers;
        p.deadline_ns = now + int64_t{options_.kato_s} * kSec;
        continue;
      }
    }
    const std::string what = p.what;
    if (admin_) admin_->Close(absl::DeadlineExceededError(what + " timed out (admin queue)"));
    return;
  }
  if (timed) tick_timer_ = admin_reactor_->AddTimerAfter(kSec, [this] { AdminTick(); });
}

}  // namespace nvmf_ublk::io
