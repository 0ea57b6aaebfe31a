#include "discovery/discover.h"

#include <deque>
#include <set>
#include <utility>

#include "base/log.h"
#include "nvme/spec.h"

namespace nvmf_ublk::discovery {
namespace {
constexpr uint8_t kTrtypeTcp = 3;
}  // namespace

absl::StatusOr<std::vector<DiscoveryLogResult>> DiscoverWithReferrals(
    io::Engine* engine, const io::ControllerOptions& base, int max_controllers,
    const DiscoveryLogResult* first) {
  std::vector<DiscoveryLogResult> out;
  std::set<std::pair<std::string, std::string>> seen;
  std::deque<DiscoveryLogResult> todo;
  if (first != nullptr) {
    todo.push_back(*first);
  } else {
    todo.push_back(DiscoveryLogResult{base.traddr, base.trsvcid, 0, absl::OkStatus(), 0, {}});
  }
  seen.insert({todo.front().traddr, todo.front().trsvcid});
  while (!todo.empty() && static_cast<int>(out.size()) < max_controllers) {
    DiscoveryLogResult cur = std::move(todo.front());
    todo.pop_front();
    if (!(first != nullptr && out.empty())) {
      io::ControllerOptions o = base;
      o.discovery = true;
      o.subnqn = nvme::kDiscoveryNqn;
      o.traddr = cur.traddr;
      o.trsvcid = cur.trsvcid;
      o.kato_s = 0;  // one-shot reads need no keep-alive
      o.name.clear();
      auto dc = io::SyncController::Connect(engine, o);
      absl::StatusOr<std::vector<nvme::DiscoveryEntry>> log =
          dc.ok() ? (*dc)->DiscoveryLog()
                  : absl::StatusOr<std::vector<nvme::DiscoveryEntry>>(dc.status());
      if (dc.ok()) {
        cur.genctr = (*dc)->controller()->discovery_genctr();
        (*dc)->Disconnect();
      }
      if (!log.ok()) {
        if (cur.depth == 0) return log.status();
        NLOG(WARNING) << "referral " << cur.traddr << ":" << cur.trsvcid << ": " << log.status();
        cur.status = log.status();
        out.push_back(std::move(cur));
        continue;
      }
      cur.entries = std::move(*log);
    }
    for (const auto& e : cur.entries) {
      if (!e.IsReferral() || e.trtype != kTrtypeTcp) continue;
      if (!seen.insert({e.traddr, e.trsvcid}).second) continue;
      todo.push_back(
          DiscoveryLogResult{e.traddr, e.trsvcid, cur.depth + 1, absl::OkStatus(), 0, {}});
    }
    out.push_back(std::move(cur));
  }
  return out;
}

}  // namespace nvmf_ublk::discovery
