// Command line and runtime control commands of the nvmf-target binary (main.cc). Parsing is
// separate from main() so it can be unit tested; every error names the flag and the bad value.
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_CLI_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_CLI_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "base/log.h"
#include "config.h"

namespace nvmf_ublk::target {

class Target;

// A port named on the command line: "#N" is the N-th --listen (0-based), a plain number is a TCP
// port (as configured, or as bound once running).
struct PortRef {
  bool by_index = false;
  uint32_t value = 0;
};

struct CliOptions {
  TargetConfig config;
  // Faults of single ports, applied right after Start (target-wide ones are in config.fault).
  std::vector<std::pair<PortRef, FaultConfig>> port_faults;
  // Initial ANA states: (port, group, state), applied right after Start.
  std::vector<std::tuple<PortRef, uint32_t, AnaState>> ana;
  std::string control;  // "" none, "-" stdin, else a FIFO path (created if missing)
  LogLevel log_level = LogLevel::kInfo;
  bool help = false;
};

// Parses argv[1..]. Defaults: --listen 127.0.0.1:4420 when none is given; --ns before any
// --subsystem goes to the subsystem kDefaultNqn.
absl::StatusOr<CliOptions> ParseCommandLine(const std::vector<std::string>& args);
std::string UsageText();
inline constexpr char kDefaultNqn[] = "nqn.2026-01.io.nvmf-ublk:target";

// "4096", "64K", "1G", "1.5M" is not accepted; suffixes K/M/G/T are powers of 1024 ("KiB", "KB"
// and "k" are accepted too).
absl::StatusOr<uint64_t> ParseSize(std::string_view text);
// "127.0.0.1:4420", "[::1]:4420", "0.0.0.0:0". The address must be numeric.
absl::StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(std::string_view text);
// "ram:SIZE[:BS]", "null:SIZE[:BS]", "file:PATH[:BS]", then ",key=value" options: nsid, ana-group,
// size (file), nguid (32 hex digits), uuid, eui64 (16 hex digits).
absl::StatusOr<NamespaceConfig> ParseNamespaceSpec(std::string_view spec);
// "key=value[,key=value...]"; an optional "port=PORT" key selects one port. "clear" or "none"
// gives an empty FaultConfig. Keys: cut-after, delay, drop-every, corrupt-digest, term-req,
// error, status, admin, cpda, maxh2cdata, r2t-chunk, max-r2t.
absl::StatusOr<FaultConfig> ParseFaultSpec(std::string_view spec, std::optional<PortRef>* port);
// "ana-inaccessible", "ana-loss", "ana-transition", "path", "dnr", "transient", or
// "SCT:SC[:dnr]" with numbers in hex or decimal.
absl::StatusOr<uint16_t> ParseStatusName(std::string_view text);
absl::StatusOr<PortRef> ParsePortRef(std::string_view text);

// Resolves a PortRef against a running target.
absl::StatusOr<size_t> ResolvePort(const Target& target, const PortRef& ref);

// Runs one control command line ("ana 4420 1 inaccessible", "fault delay=100", "status", ...)
// against a running target. Returns the text to print; sets *quit for "quit".
absl::StatusOr<std::string> RunControlCommand(Target& target, std::string_view line, bool* quit);

}  // namespace nvmf_ublk::target

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_CLI_H_
