// Persistent discovery's decisions, as pure logic with the clock passed in (the daemon's
// discovery service acts on them; tests drive them with a fake clock).
//
// A persistent discovery controller's log says which NVM subsystem records (subsystem NQN through
// one portal) should be connected. The reconciler keeps, per record, what it knows:
//   wanted      in the latest log, not connected yet: connect now, or after the backoff of a
//               failed attempt (doubling from retry_initial up to retry_max);
//   connecting  an attempt is out (the service reports its result);
//   owned       connected by this discovery controller: it disconnects it once the record has
//               been missing from every complete log for `grace`;
//   foreign     already connected by someone else (a `connect` by hand, another discovery
//               controller): never disconnected from here;
//   vanishing   owned, missing from the log since `missing_since`, within the grace period.
// Only a complete log read counts: an unreachable discovery controller makes nothing vanish.
#ifndef NVMF_UBLK_DISCOVERY_RECONCILE_H_
#define NVMF_UBLK_DISCOVERY_RECONCILE_H_

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "nvme/log_pages.h"

namespace nvmf_ublk::discovery {

struct RecordKey {
  std::string subnqn;
  std::string traddr;
  std::string trsvcid;
  bool operator<(const RecordKey& o) const {
    return std::tie(subnqn, traddr, trsvcid) < std::tie(o.subnqn, o.traddr, o.trsvcid);
  }
  bool operator==(const RecordKey& o) const {
    return subnqn == o.subnqn && traddr == o.traddr && trsvcid == o.trsvcid;
  }
  std::string ToString() const;  // "<subnqn> at <traddr>:<trsvcid>"
};
RecordKey KeyOf(const nvme::DiscoveryEntry& e);

// What connect-all connects from a set of logs: NVM subsystem records (SUBTYPE 2) over TCP, each
// (subsystem, portal) once, in log order. Discovery subsystems (current, referral) are not
// connected; a record of another transport or address family is skipped with a reason in
// `skipped` (when given).
std::vector<nvme::DiscoveryEntry> ConnectableRecords(
    const std::vector<std::vector<nvme::DiscoveryEntry>>& logs,
    std::vector<std::string>* skipped = nullptr);

struct ReconcileOptions {
  int64_t grace_ns = 60'000'000'000;
  int64_t retry_initial_ns = 2'000'000'000;
  int64_t retry_max_ns = 300'000'000'000;
};

class Reconciler {
 public:
  enum class State { kWanted, kConnecting, kOwned, kForeign, kVanishing };
  static const char* ToString(State s);

  struct Action {
    enum Kind { kConnect, kDisconnect } kind;
    nvme::DiscoveryEntry entry;
  };
  struct RecordStatus {
    RecordKey key;
    State state;
    int failures = 0;         // consecutive failed connects
    absl::Status last_error;  // of the latest failed connect
    int64_t next_try_ns = 0;  // kWanted after a failure: when it is tried again
    int64_t missing_since_ns = 0;
  };

  explicit Reconciler(ReconcileOptions options = {}) : options_(options) {}

  // A complete read of the log (its connectable records, ConnectableRecords).
  void OnLog(const std::vector<nvme::DiscoveryEntry>& records, int64_t now_ns);
  // A record this discovery controller connected before a daemon restart (from the state file).
  void Adopt(const nvme::DiscoveryEntry& entry);
  // What to do now. Each kConnect moves its record to connecting: report with OnConnectResult.
  // Each kDisconnect forgets the record (the caller disconnects it).
  std::vector<Action> Poll(int64_t now_ns);
  // `owned`: the connect created the connection (false: it was already there, someone else's).
  void OnConnectResult(const RecordKey& key, const absl::Status& status, bool owned,
                       int64_t now_ns);
  // The record's connection went away by other means (a `disconnect` by hand): forget it, and
  // connect it again only when a later log still lists it.
  void Forget(const RecordKey& key);
  // The earliest time Poll has something to do (a retry or a grace expiry); 0 for none.
  int64_t NextDeadline() const;

  std::vector<RecordStatus> Status() const;
  std::vector<RecordKey> Owned() const;  // owned and vanishing

 private:
  struct Rec {
    nvme::DiscoveryEntry entry;
    State state = State::kWanted;
    int failures = 0;
    absl::Status last_error;
    int64_t next_try_ns = 0;
    int64_t missing_since_ns = 0;
  };
  ReconcileOptions options_;
  std::map<RecordKey, Rec> recs_;
};

}  // namespace nvmf_ublk::discovery

#endif  // NVMF_UBLK_DISCOVERY_RECONCILE_H_
