// The daemon's state file (/run/nvmf-ublk/state.json): what it has connected and which ublk device
// serves each namespace, so a restarted daemon (after a crash, kill -9 or an upgrade) can reconnect
// and recover every device (DESIGN.md §4). Written atomically (temporary file + rename) after each
// change; lives on /run, so a reboot starts clean.
//
// Upgrades: the file carries a format version (kStateFormatVersion). Fields may be added without
// changing it (readers ignore what they do not know); the version goes up only when an older
// daemon would misread the file. A daemon meeting a newer version refuses to start and touches
// nothing (LoadState: kFailedPrecondition), so a downgrade never mangles a newer daemon's devices.
#ifndef NVMF_UBLK_DAEMON_STATE_FILE_H_
#define NVMF_UBLK_DAEMON_STATE_FILE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nvmf_ublk/control.h"

namespace nvmf_ublk::daemon {

struct DeviceRecord {
  uint32_t nsid = 0;
  int dev_id = -1;
  std::string stable_id;
  std::string iopolicy;  // the device's multipath I/O policy (empty: round-robin)
};

struct ConnectionRecord {
  ConnectArgs args;  // hostnqn/hostid resolved: a restart reconnects as the same host
  std::vector<DeviceRecord> devices;
};

// Version 2: one device may be listed under several connections (its paths; same dev_id). A file
// without such a device is written as version 1, which version-1 daemons read correctly.
inline constexpr int kStateFormatVersion = 2;

// A persistent discovery controller (connect-all --persistent): restarted by the next daemon,
// which also learns from the connections' owner ("discovery:<id>") which ones it connected.
struct DiscoveryControllerRecord {
  std::string id;
  ConnectAllArgs args;  // hostnqn/hostid resolved
  std::string owner;    // connect-all --owner
};

struct State {
  std::vector<ConnectionRecord> connections;
  std::vector<DiscoveryControllerRecord> discovery;
};

// A missing file is an empty state. kFailedPrecondition: written by a newer format (see above);
// kDataLoss: not a state file this daemon can read.
absl::StatusOr<State> LoadState(const std::string& path);
// The same for the file's text; `origin` (the path) starts the error messages. Any text, however
// malformed, gives a State or an error: nothing throws.
absl::StatusOr<State> ParseState(std::string_view text, const std::string& origin);
absl::Status SaveState(const std::string& path, const State& state);
// The version SaveState writes for `state`: 2 when a dev_id appears under two connections, else 1.
int StateFormatVersionFor(const State& state);

}  // namespace nvmf_ublk::daemon

#endif  // NVMF_UBLK_DAEMON_STATE_FILE_H_
