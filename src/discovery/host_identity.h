// The host's NVMe identity (host NQN and host ID), resolved like nvme-cli does: an explicit value,
// else /etc/nvme/hostnqn and /etc/nvme/hostid (read through libnvme), else one derived from the
// machine: libnvme's generated NQN (from the DMI product UUID), and the UUID inside the host NQN as
// the host ID. The kernel requires the pair to be consistent per host; so do we.
#ifndef NVMF_UBLK_DISCOVERY_HOST_IDENTITY_H_
#define NVMF_UBLK_DISCOVERY_HOST_IDENTITY_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace nvmf_ublk::discovery {

struct HostIdentity {
  std::string hostnqn;
  std::string hostid;  // canonical 8-4-4-4-12 text
  std::array<uint8_t, 16> hostid_bytes{};
};

// Parses a UUID ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", case-insensitive) into 16 bytes.
absl::StatusOr<std::array<uint8_t, 16>> ParseUuid(std::string_view text);
std::string FormatUuid(const std::array<uint8_t, 16>& bytes);

// `hostnqn`/`hostid` may be empty (then files, then the machine); explicit values are validated.
absl::StatusOr<HostIdentity> ResolveHostIdentity(std::string_view hostnqn, std::string_view hostid);

}  // namespace nvmf_ublk::discovery

#endif  // NVMF_UBLK_DISCOVERY_HOST_IDENTITY_H_
