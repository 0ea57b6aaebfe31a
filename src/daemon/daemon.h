// nvmf-ublkd's core: connections (controllers), their namespaces as ublk devices, the control
// requests, the state file and recovery after a restart (DESIGN.md §6).
//
// Threads: control requests arrive serialized on the control-socket threads and may block (device
// creation waits for the kernel); controllers run on the engine's control reactor, I/O on the I/O
// reactors. Recovery of each connection found in the state file runs on its own thread, so a target
// that is down does not hold up the daemon.
#ifndef NVMF_UBLK_DAEMON_DAEMON_H_
#define NVMF_UBLK_DAEMON_DAEMON_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/state_file.h"
#include "io/controller.h"
#include "io/engine.h"
#include "multipath/namespace_head.h"
#include "multipath/path.h"
#include "nlohmann/json.hpp"
#include "nvmf_ublk/control.h"
#include "ublk/control.h"
#include "ublk/device.h"

namespace nvmf_ublk::daemon {

struct DaemonOptions {
  std::string state_dir = "/run/nvmf-ublk";
  int reactors = 0;                    // 0: online CPUs
  uint32_t max_io_bytes = 512 * 1024;  // per-tag buffer of each ublk queue
  uint32_t max_queue_depth = 128;      // ublk tags per queue
  std::string ublk_control = ublk::kControlPath;
};

class Daemon final : private io::ControllerListener {
 public:
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(const DaemonOptions& options);
  ~Daemon() override;

  // Starts recovering every connection in the state file (returns at once).
  void StartRecovery();
  // One control request -> one reply (see include/nvmf_ublk/control.h).
  nlohmann::json Handle(const nlohmann::json& request);
  // SIGTERM: stops every device, shuts every controller down (CC.SHN), clears the state file.
  void Shutdown();

  std::string state_path() const { return options_.state_dir + "/state.json"; }

 private:
  struct Device;
  struct Conn;
  explicit Daemon(const DaemonOptions& options) : options_(options) {}

  absl::StatusOr<std::vector<DeviceInfo>> Connect(const ConnectArgs& args);
  absl::StatusOr<std::vector<DeviceInfo>> Disconnect(const std::string& subnqn,
                                                     const std::string& device);
  std::vector<ControllerSummary> List();

  absl::StatusOr<ublk::ControlDevice*> UblkControl();
  io::ControllerOptions ControllerOptionsFor(const ConnectArgs& args) const;
  // Creates the controller and waits until it is live (or returns why it is not).
  absl::Status StartController(Conn* conn, bool retry_initial);
  absl::Status WaitLive(Conn* conn);
  absl::StatusOr<std::unique_ptr<Device>> CreateDevice(Conn* conn, const io::NamespaceEntry& ns);
  void RecoverConnection(const ConnectionRecord& record);
  void RemoveConn(Conn* conn);
  void StopDevice(Device* dev);
  void DestroyController(Conn* conn);
  void Persist();
  DeviceInfo InfoOf(const Conn& conn, const Device& dev) const;
  Conn* FindConn(io::Controller* ctrl);

  void OnControllerState(io::Controller* ctrl, int state, const absl::Status& why) override;

  DaemonOptions options_;
  std::unique_ptr<io::Engine> engine_;
  std::unique_ptr<ublk::ControlDevice> ublk_control_;
  std::mutex ublk_mu_;

  // Serializes operations that change connections and devices (requests, recovery, shutdown).
  std::mutex ops_mu_;
  std::mutex mu_;  // conns_ membership, Conn::state/reason; never held while waiting on a reactor
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<std::thread> recovery_threads_;
  bool shutting_down_ = false;
};

}  // namespace nvmf_ublk::daemon

#endif  // NVMF_UBLK_DAEMON_DAEMON_H_
