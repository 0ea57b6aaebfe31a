#include "discovery/reconcile.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"

namespace nvmf_ublk::discovery {
namespace {
constexpr uint8_t kTrtypeTcp = 3;
constexpr uint8_t kAdrfamIpv4 = 1;
constexpr uint8_t kAdrfamIpv6 = 2;
}  // namespace

std::string RecordKey::ToString() const {
  return absl::StrCat(subnqn, " at ", traddr, ":", trsvcid);
}

RecordKey KeyOf(const nvme::DiscoveryEntry& e) { return RecordKey{e.subnqn, e.traddr, e.trsvcid}; }

std::vector<nvme::DiscoveryEntry> ConnectableRecords(
    const std::vector<std::vector<nvme::DiscoveryEntry>>& logs, std::vector<std::string>* skipped) {
  std::vector<nvme::DiscoveryEntry> out;
  std::set<RecordKey> seen;
  for (const auto& log : logs) {
    for (const auto& e : log) {
      if (e.subtype != nvme::kSubtypeNvme) continue;  // discovery subsystems, referrals
      if (e.trtype != kTrtypeTcp || (e.adrfam != kAdrfamIpv4 && e.adrfam != kAdrfamIpv6)) {
        if (skipped != nullptr) {
          skipped->push_back(absl::StrCat(
              e.subnqn, " at ", e.traddr, ":", e.trsvcid, ": trtype ", nvme::TrtypeName(e.trtype),
              ", adrfam ", nvme::AdrfamName(e.adrfam), " (only tcp over ipv4/ipv6 is supported)"));
        }
        continue;
      }
      if (!seen.insert(KeyOf(e)).second) continue;
      out.push_back(e);
    }
  }
  return out;
}

const char* Reconciler::ToString(State s) {
  switch (s) {
    case State::kWanted:
      return "wanted";
    case State::kConnecting:
      return "connecting";
    case State::kOwned:
      return "connected";
    case State::kForeign:
      return "connected-elsewhere";
    case State::kVanishing:
      return "vanishing";
  }
  return "?";
}

void Reconciler::OnLog(const std::vector<nvme::DiscoveryEntry>& records, int64_t now_ns) {
  std::set<RecordKey> present;
  for (const auto& e : records) {
    const RecordKey k = KeyOf(e);
    present.insert(k);
    auto [it, added] = recs_.try_emplace(k);
    Rec& r = it->second;
    r.entry = e;
    if (added) continue;  // kWanted, try at once
    switch (r.state) {
      case State::kVanishing:
        r.state = State::kOwned;  // back in the log within the grace period: keep it
        r.missing_since_ns = 0;
        break;
      case State::kForeign:
        // Someone else's connection may have gone meanwhile: ask again (an idempotent connect).
        r.state = State::kWanted;
        r.next_try_ns = 0;
        break;
      default:
        break;
    }
  }
  for (auto it = recs_.begin(); it != recs_.end();) {
    Rec& r = it->second;
    if (present.count(it->first) != 0) {
      ++it;
      continue;
    }
    switch (r.state) {
      case State::kOwned:
        r.state = State::kVanishing;
        r.missing_since_ns = now_ns;
        ++it;
        break;
      case State::kVanishing:
      case State::kConnecting:  // its result decides (owned: it then vanishes at the next log)
        ++it;
        break;
      default:  // wanted or foreign: nothing of ours to undo
        it = recs_.erase(it);
        break;
    }
  }
}

void Reconciler::Adopt(const nvme::DiscoveryEntry& entry) {
  Rec& r = recs_[KeyOf(entry)];
  r.entry = entry;
  r.state = State::kOwned;
  r.missing_since_ns = 0;
}

std::vector<Reconciler::Action> Reconciler::Poll(int64_t now_ns) {
  std::vector<Action> out;
  for (auto it = recs_.begin(); it != recs_.end();) {
    Rec& r = it->second;
    if (r.state == State::kWanted && r.next_try_ns <= now_ns) {
      r.state = State::kConnecting;
      out.push_back(Action{Action::kConnect, r.entry});
    } else if (r.state == State::kVanishing && now_ns - r.missing_since_ns >= options_.grace_ns) {
      out.push_back(Action{Action::kDisconnect, r.entry});
      it = recs_.erase(it);
      continue;
    }
    ++it;
  }
  return out;
}

void Reconciler::OnConnectResult(const RecordKey& key, const absl::Status& status, bool owned,
                                 int64_t now_ns) {
  auto it = recs_.find(key);
  if (it == recs_.end() || it->second.state != State::kConnecting) return;
  Rec& r = it->second;
  if (status.ok()) {
    r.state = owned ? State::kOwned : State::kForeign;
    r.failures = 0;
    r.last_error = absl::OkStatus();
    return;
  }
  r.state = State::kWanted;
  r.last_error = status;
  int64_t delay = options_.retry_initial_ns;
  for (int i = 0; i < r.failures && delay < options_.retry_max_ns; ++i) delay *= 2;
  r.next_try_ns = now_ns + std::min(delay, options_.retry_max_ns);
  ++r.failures;
}

void Reconciler::Forget(const RecordKey& key) { recs_.erase(key); }

int64_t Reconciler::NextDeadline() const {
  int64_t best = 0;
  for (const auto& [k, r] : recs_) {
    int64_t t = 0;
    if (r.state == State::kWanted) t = r.next_try_ns;
    if (r.state == State::kVanishing) t = r.missing_since_ns + options_.grace_ns;
    if (t == 0 && r.state != State::kWanted) continue;
    if (best == 0 || t < best) best = std::max<int64_t>(t, 1);
  }
  return best;
}

std::vector<Reconciler::RecordStatus> Reconciler::Status() const {
  std::vector<RecordStatus> out;
  for (const auto& [k, r] : recs_) {
    out.push_back(
        RecordStatus{k, r.state, r.failures, r.last_error, r.next_try_ns, r.missing_since_ns});
  }
  return out;
}

std::vector<RecordKey> Reconciler::Owned() const {
  std::vector<RecordKey> out;
  for (const auto& [k, r] : recs_) {
    if (r.state == State::kOwned || r.state == State::kVanishing) out.push_back(k);
  }
  return out;
}

}  // namespace nvmf_ublk::discovery
