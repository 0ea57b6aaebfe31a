// The storage model of the target: NVM subsystems and their namespaces. Both are fixed once
// created (namespaces are not added or removed at run time), so connection threads read them
// without locks; only the per-namespace counters change, atomically.
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_SUBSYSTEM_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_SUBSYSTEM_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "auth/dhchap.h"
#include "backend.h"
#include "config.h"

namespace nvmf_ublk::target {

// Commands that reached a namespace (after ANA, range and fault checks passed).
struct NamespaceCounters {
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t fua_writes = 0;
  uint64_t flushes = 0;
  uint64_t write_zeroes = 0;
  uint64_t deallocates = 0;  // Dataset Management deallocate commands
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

class Namespace {
 public:
  Namespace(uint32_t nsid, uint32_t block_size, uint32_t ana_group, std::array<uint8_t, 16> nguid,
            std::array<uint8_t, 16> uuid, std::optional<std::array<uint8_t, 8>> eui64,
            std::unique_ptr<Backend> backend);

  uint32_t nsid() const { return nsid_; }
  uint32_t block_size() const { return block_size_; }
  uint32_t lba_shift() const { return lba_shift_; }
  uint64_t blocks() const { return blocks_; }
  uint32_t ana_group() const { return ana_group_; }
  const std::array<uint8_t, 16>& nguid() const { return nguid_; }
  const std::array<uint8_t, 16>& uuid() const { return uuid_; }
  const std::optional<std::array<uint8_t, 8>>& eui64() const { return eui64_; }
  Backend& backend() const { return *backend_; }

  NamespaceCounters counters() const;
  struct AtomicCounters {
    std::atomic<uint64_t> reads{0}, writes{0}, fua_writes{0}, flushes{0}, write_zeroes{0},
        deallocates{0}, bytes_read{0}, bytes_written{0};
  };
  AtomicCounters& mutable_counters() const { return counters_; }

 private:
  uint32_t nsid_;
  uint32_t block_size_;
  uint32_t lba_shift_;
  uint64_t blocks_;
  uint32_t ana_group_;
  std::array<uint8_t, 16> nguid_;
  std::array<uint8_t, 16> uuid_;
  std::optional<std::array<uint8_t, 8>> eui64_;
  std::unique_ptr<Backend> backend_;
  mutable AtomicCounters counters_;
};

class Subsystem {
 public:
  // Opens the backends. `num_ports` validates SubsystemConfig::ports.
  static absl::StatusOr<std::unique_ptr<Subsystem>> Create(const SubsystemConfig& config,
                                                           size_t num_ports);
  // The discovery subsystem: every host, every port, no namespaces.
  static std::unique_ptr<Subsystem> CreateDiscovery();

  const std::string& nqn() const { return nqn_; }
  const std::string& serial() const { return serial_; }
  const std::string& model() const { return model_; }
  bool discovery() const { return discovery_; }
  // Sorted by NSID.
  const std::vector<std::unique_ptr<Namespace>>& namespaces() const { return namespaces_; }
  const Namespace* FindNamespace(uint32_t nsid) const;
  uint32_t max_nsid() const { return namespaces_.empty() ? 0 : namespaces_.back()->nsid(); }
  // ANA group IDs of the namespaces, ascending, without duplicates.
  std::vector<uint32_t> AnaGroups() const;
  bool HostAllowed(std::string_view hostnqn) const;
  // The DH-HMAC-CHAP keys this host must prove, or null when it need not authenticate.
  std::shared_ptr<const auth::DhchapControllerConfig> AuthFor(std::string_view hostnqn) const;
  bool OnPort(size_t port_index) const;

 private:
  Subsystem() = default;
  std::string nqn_, serial_, model_;
  bool discovery_ = false;
  std::vector<std::unique_ptr<Namespace>> namespaces_;
  std::vector<std::string> allowed_hosts_;
  std::map<std::string, std::shared_ptr<const auth::DhchapControllerConfig>, std::less<>> auth_;
  std::vector<size_t> ports_;
};

// Stable identifiers derived from (subsystem NQN, NSID): the same inputs always give the same
// bytes. The UUID has the RFC 4122 variant and version 8 (custom) bits.
std::array<uint8_t, 16> DeriveNguid(std::string_view nqn, uint32_t nsid);
std::array<uint8_t, 16> DeriveUuid(std::string_view nqn, uint32_t nsid);
// A serial number (20 characters at most) derived from the NQN.
std::string DeriveSerial(std::string_view nqn);

// NQN syntax check (Base 2.0 §4.5): "nqn." prefix, 1..223 bytes, no control characters.
absl::Status ValidateNqn(std::string_view nqn);

}  // namespace nvmf_ublk::target

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_SUBSYSTEM_H_
