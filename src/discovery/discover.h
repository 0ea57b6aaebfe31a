// Discovery across referrals: reads a discovery controller's log and, breadth-first, the logs of
// the discovery controllers it refers to (entries of subtype "discovery subsystem referral"), each
// controller once, up to a bound, so a loop of referrals cannot run forever. A referred controller
// that cannot be read does not spoil the rest: its status is recorded with its address.
#ifndef NVMF_UBLK_DISCOVERY_DISCOVER_H_
#define NVMF_UBLK_DISCOVERY_DISCOVER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "io/controller.h"
#include "io/engine.h"
#include "nvme/log_pages.h"

namespace nvmf_ublk::discovery {

struct DiscoveryLogResult {
  std::string traddr;
  std::string trsvcid;
  int depth = 0;  // 0: the controller asked for; 1: referred by it; ...
  absl::Status status;
  uint64_t genctr = 0;
  std::vector<nvme::DiscoveryEntry> entries;
};

// `base` carries the first controller's address and the host identity and transport options used
// for every controller (discovery, subnqn and keep-alive are set here). Fails only when the first
// controller cannot be read. With `first` (a log already read from the first controller, e.g. by
// a persistent discovery controller), only the referrals are read.
absl::StatusOr<std::vector<DiscoveryLogResult>> DiscoverWithReferrals(
    io::Engine* engine, const io::ControllerOptions& base, int max_controllers = 16,
    const DiscoveryLogResult* first = nullptr);

}  // namespace nvmf_ublk::discovery

#endif  // NVMF_UBLK_DISCOVERY_DISCOVER_H_
