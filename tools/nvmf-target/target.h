// nvmf-target: a small userspace NVMe/TCP target for the nvmf-ublk tests, demo and benchmarks
// (DESIGN.md §2 "Tools and tests sit beside"). Built on the protocol layer (tcp::PduParser in the
// host-to-controller direction, the pdu_codec encoders, nvme/spec.h); independent of the
// initiator's io_uring engine. One thread per TCP connection with blocking sockets, plus one accept
// thread per listen port.
//
//   TargetConfig config;
//   config.ports.push_back({.address = "127.0.0.1", .port = 0});
//   config.subsystems.push_back({.nqn = "nqn.2026-01.io.nvmf-ublk:test",
//                                .namespaces = {{.size_bytes = 64 << 20}}});
//   Target target(config);
//   ASSIGN_OR_RETURN(std::vector<uint16_t> ports, target.Start());
//   ... connect to 127.0.0.1:ports[0] ...
//   target.SetAnaState(0, 1, AnaState::kInaccessible);   // AEN to the hosts connected on port 0
//   target.SetFault({.delay_ms = 50});                    // all later responses 50 ms late
//   target.Stop();                                        // closes everything, joins every thread
//
// Every public method is thread-safe.
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_TARGET_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_TARGET_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "config.h"
#include "pages.h"
#include "subsystem.h"

namespace nvmf_ublk::target {

class Connection;
class Controller;

// A fault configuration with its remaining budgets (FaultConfig's "next N" counts).
struct FaultState {
  explicit FaultState(const FaultConfig& c)
      : config(c),
        corrupt_digest(c.corrupt_digest),
        term_req(c.term_req),
        error_count(c.error_count),
        malice(c.malice_times == 0 ? UINT64_MAX : c.malice_times) {}
  const FaultConfig config;
  std::atomic<uint64_t> corrupt_digest;
  std::atomic<uint64_t> term_req;
  std::atomic<uint64_t> error_count;
  std::atomic<uint64_t> malice;
  // Takes one unit of `budget`; false when it is exhausted.
  static bool Take(std::atomic<uint64_t>& budget);
};

// Transport events since Start, target-wide (for tests asserting how data moved).
struct TransportStats {
  uint64_t connections = 0;     // accepted
  uint64_t capsules = 0;        // CapsuleCmd PDUs received
  uint64_t r2ts = 0;            // R2T PDUs sent
  uint64_t h2c_data = 0;        // H2CData PDUs received
  uint64_t c2h_data = 0;        // C2HData PDUs sent
  uint64_t c2h_success = 0;     // reads completed with the C2HData SUCCESS flag
  uint64_t term_reqs = 0;       // C2HTermReqs sent
  uint64_t events = 0;          // asynchronous events completed
  uint64_t keep_alives = 0;     // Keep Alive commands received
  uint64_t malice = 0;          // deliberate protocol violations committed (FaultConfig::malice)
  uint64_t host_term_reqs = 0;  // H2CTermReqs received
  uint16_t last_host_fes = 0;   // FES and FEI of the last one
  uint32_t last_host_fei = 0;
};

class Target {
 public:
  explicit Target(TargetConfig config);
  ~Target();  // Stop()
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  // Validates the configuration, opens the namespaces' backends, binds every port and starts
  // accepting. Returns the bound TCP port of each configured port, in order. Once only.
  absl::StatusOr<std::vector<uint16_t>> Start();
  // Closes listeners and connections and joins every thread. Idempotent.
  void Stop();

  // Bound TCP ports, by port index (empty before Start).
  std::vector<uint16_t> ports() const;
  // The index of the port bound to (or configured with) TCP port `tcp_port`.
  std::optional<size_t> PortIndex(uint16_t tcp_port) const;

  // ANA state of `group` on port `port_index` (like nvmet's ports/N/ana_groups/G/ana_state).
  // A change bumps the ANA change counters and sends an ANA change AEN to every I/O controller
  // connected through that port that enabled it.
  absl::Status SetAnaState(size_t port_index, uint32_t group, AnaState state);
  AnaState GetAnaState(size_t port_index, uint32_t group) const;

  // Replaces the faults of one port (or, with no port, the target-wide ones, used by ports that
  // have none of their own). An empty FaultConfig clears. Budgets restart.
  absl::Status SetFault(const FaultConfig& fault, std::optional<size_t> port_index = std::nullopt);
  void ClearFaults();

  // Discovery configuration changes; each bumps the discovery log generation counter and sends a
  // discovery log change AEN to the discovery controllers that enabled it.
  absl::Status AddReferral(const ReferralConfig& referral);
  absl::Status RemoveReferral(const std::string& address, uint16_t port);
  // Adds a subsystem (after Start too); its ports must exist and its ANA groups must not exceed
  // the ANAGRPMAX fixed at Start.
  absl::Status AddSubsystem(const SubsystemConfig& config);
  uint64_t discovery_generation() const { return genctr_.load(); }

  // Counters of namespace `nsid` of subsystem `nqn`.
  absl::StatusOr<NamespaceCounters> Counters(std::string_view nqn, uint32_t nsid) const;
  // Reads namespace data directly from the backend (for tests to verify what hosts wrote).
  absl::Status ReadNamespace(std::string_view nqn, uint32_t nsid, uint64_t offset,
                             std::span<uint8_t> out) const;
  size_t LiveControllers() const;
  size_t LiveConnections() const;
  // The HOSTID of the last Connect received (any queue), as 8-4-4-4-12 text; empty before any.
  std::string LastConnectHostId() const;
  void RecordConnectHostId(const std::array<uint8_t, 16>& hostid);
  // Joins and frees connections whose thread has ended (otherwise done at the next accept), so
  // that a test can count the fds and threads left.
  void ReapFinished() { ReapConnections(false); }
  TransportStats Stats() const;
  // Multi-line human-readable state: ports, controllers, namespaces and counters.
  std::string DescribeState() const;

 private:
  friend class Connection;

  struct Port {
    PortConfig config;
    UniqueFd listen_fd;
    uint16_t bound_port = 0;
    bool wildcard = false;
    uint8_t adrfam = 1;
    // ANA state per group (index = ANAGRPID, 0 unused); read lock-free on the I/O path.
    std::unique_ptr<std::atomic<uint8_t>[]> ana;
    std::vector<uint64_t> ana_group_chgcnt;  // guarded by Target::mu_
    uint64_t ana_chgcnt = 0;                 // guarded by Target::mu_
    std::shared_ptr<FaultState> fault;       // guarded by Target::fault_mu_
    std::thread accept_thread;
  };

  absl::Status BindPort(Port& port);
  void AcceptLoop(size_t index);
  void ReapConnections(bool all);
  void BumpDiscoveryGeneration();

  // --- For connections ---------------------------------------------------------------------
  const TargetConfig& config() const { return config_; }
  TransportConfig TransportFor(size_t port_index) const;
  // The faults in force for `port_index`, or null when there are none (the fast path).
  std::shared_ptr<FaultState> FaultFor(size_t port_index) const;
  const Subsystem* FindSubsystem(std::string_view nqn) const;
  // Allocates a CNTLID; null when all are in use.
  std::shared_ptr<Controller> CreateController(const Subsystem* subsystem, size_t port_index,
                                               const std::string& hostnqn,
                                               const std::array<uint8_t, 16>& hostid,
                                               uint32_t kato_ms);
  std::shared_ptr<Controller> FindController(uint16_t cntlid) const;
  // Forgets the controller and closes its I/O queues (its admin connection is going away).
  void RemoveController(const std::shared_ptr<Controller>& ctrl);
  AnaState AnaStateOf(size_t port_index, uint32_t group) const;
  std::vector<uint8_t> AnaLog(const Subsystem& subsystem, size_t port_index, bool rgo) const;
  // The discovery log for a host connected to `port_index` whose connection's local address is
  // `local_addr` (used for wildcard ports).
  std::vector<uint8_t> DiscoveryLog(const std::string& hostnqn, const std::string& local_addr,
                                    uint8_t local_adrfam) const;
  ControllerIdentity IdentityFor(const Controller& ctrl) const;

  TargetConfig config_;
  uint32_t ana_group_max_ = 0;  // fixed at Start

  mutable std::mutex mu_;    // subsystems_, controllers_, referrals_, ANA counters, conns_
  std::string last_hostid_;  // guarded by mu_
  std::vector<std::unique_ptr<Port>> ports_;
  std::vector<std::unique_ptr<Subsystem>> subsystems_;  // never shrinks: pointers stay valid
  std::unique_ptr<Subsystem> discovery_;
  std::vector<ReferralConfig> referrals_;
  std::map<uint16_t, std::shared_ptr<Controller>> controllers_;
  uint16_t next_cntlid_ = 1;
  std::list<std::unique_ptr<Connection>> conns_;

  mutable std::mutex fault_mu_;
  std::shared_ptr<FaultState> global_fault_;
  std::atomic<bool> any_fault_{false};

  struct AtomicStats {
    std::atomic<uint64_t> connections{0}, capsules{0}, r2ts{0}, h2c_data{0}, c2h_data{0},
        c2h_success{0}, term_reqs{0}, events{0}, keep_alives{0}, malice{0}, host_term_reqs{0};
    std::atomic<uint32_t> last_host_fes{0}, last_host_fei{0};
  };
  mutable AtomicStats stats_;

  std::atomic<uint64_t> genctr_{1};
  UniqueFd stop_fd_;  // eventfd that wakes the accept threads
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace nvmf_ublk::target

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_TARGET_H_
