// nvmf-ublkd's core: connections (controllers), their namespaces as ublk devices, the control
// requests, the state file and recovery after a restart (DESIGN.md §6).
//
// Threads: control requests arrive serialized on the control-socket threads and may block (device
// creation waits for the kernel); controllers run on the engine's control reactor, I/O on the I/O
// reactors. Recovery of each connection found in the state file runs on its own thread, so a target
// that is down does not hold up the daemon.
//
// Multipath (DESIGN.md §5): a device is one namespace, identified by subsystem NQN + NGUID (else
// EUI-64, else UUID); every connection (path) to that subsystem that reports the same identity
// adds a path to the same device. A namespace without any identifier gets a device of its own.
//
// Life cycle (DESIGN.md §4): devices go away only on an explicit disconnect. A daemon exit -
// SIGTERM, restart, upgrade, crash - leaves every device, its number and its mounted filesystems in
// place: HandOver() holds new I/O in the kernel, lets what the targets have complete, quiesces
// where the kernel can, and the process then exits without CC.SHN and with the state file as it
// was; the next daemon recovers every device from it (UBLK_F_USER_RECOVERY).
#ifndef NVMF_UBLK_DAEMON_DAEMON_H_
#define NVMF_UBLK_DAEMON_DAEMON_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "control/published_device.h"
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
  int poll_us = 0;                     // reactors poll this long before sleeping (--poll-us)
  uint32_t max_io_bytes = 512 * 1024;  // per-tag buffer of each ublk queue
  uint32_t max_queue_depth = 128;      // ublk tags per queue
  // A command unanswered this long is aborted, and its queue reset if the Abort is not answered
  // within min(5 s, this): the kernel host's nvme_core.io_timeout, per daemon.
  double io_timeout_s = 30;
  // How long removing a device waits for its I/O to stop (STOP_DEV, then its queues); a device
  // whose I/O does not stop in time is given up: kept in memory, its requests failed (EIO).
  double stop_timeout_s = 60;
  std::string ublk_control = ublk::kControlPath;
};

struct HandOverSummary {
  int devices = 0;              // handed to the next daemon
  uint32_t held = 0;            // requests left queued for it
  uint32_t in_flight_left = 0;  // requests the targets had not answered by the deadline
  int quiesced = 0;             // devices quiesced by the kernel (UBLK_F_QUIESCE)
  int64_t elapsed_ns = 0;
};

struct DeviceCounts {
  int live = 0;
  int recovering = 0;
};

class Daemon final : private io::ControllerListener {
 public:
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(const DaemonOptions& options);
  // Hands over (if HandOver was not called) and releases what no device needs; devices stay.
  ~Daemon() override;

  // Starts recovering every connection of `state` (LoadState(state_path())); returns at once.
  void StartRecovery(const State& state);
  // One control request -> one reply (see include/nvmf_ublk/control.h). Any request, however
  // malformed (wrong JSON types included), gets an error reply; nothing throws.
  nlohmann::json Handle(const nlohmann::json& request);
  // SIGTERM: refuse further requests and leave every device to the next daemon (see above), within
  // `timeout_ns`. The state file is left as it is. Call once; exit the process soon afterwards.
  HandOverSummary HandOver(int64_t timeout_ns);

  DeviceCounts Counts();
  // Whether every reactor (control and I/O) runs a posted task within `timeout_ns`: the
  // watchdog's evidence that the daemon is not hung.
  bool ReactorsResponsive(int64_t timeout_ns);

  std::string state_path() const { return options_.state_dir + "/state.json"; }

 private:
  nlohmann::json HandleRequest(const nlohmann::json& request);
  struct Device;
  struct DevPath;
  struct Conn;
  struct Dc;
  explicit Daemon(const DaemonOptions& options) : options_(options) {}

  struct ConnectOutcome {
    std::vector<DeviceInfo> devices;
    bool already_connected = false;  // the same connection existed (see ConnectArgs)
    std::string owner;               // the connection's owner (the existing one's when already)
  };
  absl::StatusOr<ConnectOutcome> Connect(const ConnectArgs& args);
  // By device, or by subsystem (optionally only the paths through traddr[:trsvcid]); with
  // `owner`, only connections of that owner.
  absl::StatusOr<std::vector<DeviceInfo>> Disconnect(const std::string& subnqn,
                                                     const std::string& device,
                                                     const std::string& traddr = "",
                                                     const std::string& trsvcid = "",
                                                     const std::string* owner = nullptr);
  // Every connection (with an owner: of that owner, or of its persistent discovery controllers)
  // and those discovery controllers.
  absl::StatusOr<std::vector<DeviceInfo>> DisconnectAll(const std::string& owner);

  // Discovery-driven operation (discovery_service.cc).
  absl::StatusOr<ConnectAllResult> ConnectAll(const ConnectAllArgs& args);
  // Starts a persistent discovery controller's thread (which connects it and reconciles).
  // Makes, records and starts persistent discovery controller `dc_id` (owning `owned`); false
  // when the daemon is stopping or one with that id exists.
  bool AddDc(const ConnectAllArgs& req, const std::string& dc_id,
             const std::vector<nvme::DiscoveryEntry>& owned);
  void StartDc(const std::shared_ptr<Dc>& dc);
  void RunDc(Dc* dc);
  // Reads the log through the persistent controller and the referrals; reconciles.
  void ReadDcLog(Dc* dc);
  // Stops the thread and the controller of each; removes them from dcs_.
  void StopDcs(const std::vector<std::shared_ptr<Dc>>& dcs);
  std::vector<DiscoveryControllerInfo> ListDiscovery();
  bool OnDcEvent(io::Controller* ctrl, int state, const absl::Status& why,
                 bool log_changed);  // caller holds mu_
  absl::Status SetIoPolicy(const std::string& device, const std::string& policy);
  std::vector<ControllerSummary> List();
  std::vector<DeviceInfo> ListDevices();

  absl::StatusOr<ublk::ControlDevice*> UblkControl();
  io::ControllerOptions ControllerOptionsFor(const ConnectArgs& args) const;
  // Creates the controller and waits until it is live (or returns why it is not).
  absl::Status StartController(Conn* conn, bool retry_initial);
  absl::Status WaitLive(Conn* conn);
  absl::StatusOr<std::shared_ptr<Device>> CreateDevice(Conn* conn, const io::NamespaceEntry& ns,
                                                       multipath::IoPolicy policy);
  // Whether `conn`'s view of namespace `ns` may be another path of `dev` (same size, format,
  // identifiers; limits at least the device's), or why not.
  absl::Status CheckPathMatches(const Device& dev, const Conn& conn,
                                const io::NamespaceEntry& ns) const;
  // Adds `conn`'s path to `dev` on every queue (the reactors take the new set at once).
  void AddPath(Device* dev, Conn* conn, uint32_t nsid);
  // Takes `conn`'s path out of `dev` on every queue, waits (bounded) until nothing is in flight on
  // it, and returns it: destroy it only after its controller.
  std::unique_ptr<DevPath> TakePath(Device* dev, Conn* conn);
  void PublishPaths(Device* dev);
  std::shared_ptr<Device> FindDeviceById(int dev_id);  // caller holds mu_
  std::shared_ptr<Device> FindDeviceByIdentity(const std::string& subnqn,
                                               const std::string& stable_id);  // holds mu_
  bool Serves(const Device& dev, const Conn* conn) const;
  // Destroys each conn's controller (in-flight commands fail over) and removes the conns; their
  // devices still waiting for recovery are deleted unless another path may still bring them back.
  void RemoveConns(const std::vector<std::shared_ptr<Conn>>& conns);
  // What udev reads about a device (control/published_device.h).
  control::PublishedDevice PublishedFor(const Conn& conn, const io::NamespaceEntry& ns,
                                        int dev_id) const;
  void RecoverConnection(const std::shared_ptr<Conn>& owned, const ConnectionRecord& record);
  void RemoveKernelDevice(ublk::ControlDevice* ctl, uint32_t dev_id);
  void RemoveConn(Conn* conn);
  // Stops and deletes the device; true when its I/O did not stop in time and it was given up.
  bool StopDevice(Device* dev);
  void DestroyController(Conn* conn);
  // Orderly shutdown (CC.SHN), then destruction on the control reactor; *ctrl is null after.
  void ShutDownAndDestroy(std::unique_ptr<io::Controller>* ctrl);
  void Persist();
  DeviceInfo InfoOf(const Device& dev) const;                              // caller holds mu_
  DeviceInfo Recovering(const Conn& conn, const DeviceRecord& rec) const;  // caller holds mu_
  Conn* FindConn(io::Controller* ctrl);

  void OnControllerState(io::Controller* ctrl, int state, const absl::Status& why) override;
  void OnAsyncEvent(io::Controller* ctrl, const nvme::AsyncEvent& event) override;
  void OnNamespaceChanged(io::Controller* ctrl, const io::NamespaceEntry& now) override;
  // A namespace's new size reaches its device (UPDATE_SIZE where the kernel has it).
  void ResizeDevice(const std::shared_ptr<Device>& dev, uint64_t nsze);

  DaemonOptions options_;
  std::unique_ptr<io::Engine> engine_;
  std::unique_ptr<ublk::ControlDevice> ublk_control_;
  std::mutex ublk_mu_;

  // Serializes operations that change connections and devices (requests, recovery, hand-over).
  std::mutex ops_mu_;
  // conns_ membership, Conn::state/reason/devices/pending, stopping_; never held while waiting on
  // a reactor or the kernel.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<std::shared_ptr<Device>> devices_;  // membership and each Device::paths
  std::vector<std::shared_ptr<Dc>> dcs_;          // persistent discovery controllers
  std::vector<std::thread> recovery_threads_;
  std::vector<std::thread> event_threads_;  // work an event asked for (under mu_)
  bool stopping_ = false;     // HandOver started: no request or recovery changes anything now
  bool handed_over_ = false;  // HandOver done
  const int64_t created_ns_ = MonotonicNanos();
};

}  // namespace nvmf_ublk::daemon

#endif  // NVMF_UBLK_DAEMON_DAEMON_H_
