// The host's NVMe identity (host NQN and host ID), resolved like nvme-cli does: an explicit value,
// else /etc/nvme/hostnqn and /etc/nvme/hostid (NvmeConfigDir()), else one derived from the
// machine: libnvme's generated NQN (from the DMI product UUID; a random UUID where the machine has
// none), and the UUID inside the host NQN as the host ID. The kernel requires the pair to be
// consistent per host; so do we. SaveGeneratedIdentity writes a generated pair to those files, so
// that it never changes afterwards.
#ifndef NVMF_UBLK_DISCOVERY_HOST_IDENTITY_H_
#define NVMF_UBLK_DISCOVERY_HOST_IDENTITY_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace nvmf_ublk::discovery {

struct HostIdentity {
  std::string hostnqn;
  std::string hostid;  // canonical 8-4-4-4-12 text
  std::array<uint8_t, 16> hostid_bytes{};
  bool nqn_generated = false;  // no value and no file: derived from the machine
  bool id_generated = false;
};

// Parses a UUID ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", case-insensitive) into 16 bytes.
absl::StatusOr<std::array<uint8_t, 16>> ParseUuid(std::string_view text);
std::string FormatUuid(const std::array<uint8_t, 16>& bytes);

// `hostnqn`/`hostid` may be empty (then files, then the machine); explicit values are validated.
absl::StatusOr<HostIdentity> ResolveHostIdentity(std::string_view hostnqn, std::string_view hostid);

// nvme gen-hostnqn: "nqn.2014-08.org.nvmexpress:uuid:<uuid>", from the machine's DMI product UUID
// when it has one (libnvme), else a random UUID.
std::string GenerateHostNqn();

// Writes the generated parts of `id` to hostnqn / hostid in NvmeConfigDir() (mode 0644, created
// with the folder when absent; an existing file is never replaced). Returns the files written.
absl::StatusOr<std::vector<std::string>> SaveGeneratedIdentity(const HostIdentity& id);

}  // namespace nvmf_ublk::discovery

#endif  // NVMF_UBLK_DISCOVERY_HOST_IDENTITY_H_
