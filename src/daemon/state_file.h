// The daemon's state file (/run/nvmf-ublk/state.json): what it has connected and which ublk device
// serves each namespace, so a restarted daemon (after a crash, kill -9 or an upgrade) can reconnect
// and recover every device (DESIGN.md §4). Written atomically (temporary file + rename) after each
// change; lives on /run, so a reboot starts clean.
#ifndef NVMF_UBLK_DAEMON_STATE_FILE_H_
#define NVMF_UBLK_DAEMON_STATE_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nvmf_ublk/control.h"

namespace nvmf_ublk::daemon {

struct DeviceRecord {
  uint32_t nsid = 0;
  int dev_id = -1;
  std::string stable_id;
};

struct ConnectionRecord {
  ConnectArgs args;  // hostnqn/hostid resolved: a restart reconnects as the same host
  std::vector<DeviceRecord> devices;
};

struct State {
  std::vector<ConnectionRecord> connections;
};

absl::StatusOr<State> LoadState(const std::string& path);  // missing file: empty state
absl::Status SaveState(const std::string& path, const State& state);

}  // namespace nvmf_ublk::daemon

#endif  // NVMF_UBLK_DAEMON_STATE_FILE_H_
