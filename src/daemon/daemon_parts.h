// nvmf-ublkd's private records, shared by daemon.cc and daemon_recovery.cc (not part of any API).
#ifndef NVMF_UBLK_DAEMON_DAEMON_PARTS_H_
#define NVMF_UBLK_DAEMON_DAEMON_PARTS_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/daemon.h"
#include "discovery/reconcile.h"

namespace nvmf_ublk::daemon {

// One path of a device: a connection's controller and the NSID the namespace has there.
struct Daemon::DevPath {
  Conn* conn = nullptr;  // conns go only after their paths were taken out of every device
  uint32_t nsid = 0;
  std::unique_ptr<multipath::ControllerPath> path;
};

struct Daemon::Device {
  std::string subnqn;
  std::string stable_id;  // empty: the namespace reports no identifier and is never shared
  nvme::NamespaceIds ids;
  nvme::NamespaceInfo ns;
  ublk::DeviceParams params;
  uint16_t nr_queues = 0;
  std::vector<std::unique_ptr<DevPath>> paths;  // membership under mu_, in the order added
  std::unique_ptr<multipath::NamespaceHead> head;
  std::unique_ptr<ublk::UblkDevice> dev;
};

struct Daemon::Conn {
  ConnectArgs args;
  std::unique_ptr<io::Controller> ctrl;
  // Devices of the state file not recovered through this connection yet (it is reconnecting).
  std::vector<DeviceRecord> pending;
  int state = io::Controller::kNew;  // guarded by mu_
  absl::Status reason;               // guarded by mu_
  bool cancelled = false;            // guarded by mu_: disconnected while recovering
};

// A persistent discovery controller (connect-all --persistent) and its reconciler. Its thread
// creates the controller, reads the log when told (an event, a reconnect) and acts on the
// reconciler's decisions; it connects and disconnects through Daemon::Connect/Disconnect.
struct Daemon::Dc {
  std::string id;
  ConnectAllArgs args;
  std::string owner;                     // connect-all --owner
  std::unique_ptr<io::Controller> ctrl;  // created and destroyed on the control reactor
  std::thread thread;
  std::mutex mu;  // below; taken after Daemon::mu_, never before it
  std::condition_variable cv;
  discovery::Reconciler rec;
  bool reread = true;  // read the log at the next turn
  bool stop = false;
  int state = io::Controller::kNew;
  absl::Status reason;      // why the controller is not live
  absl::Status read_error;  // of the latest log read (OK once one succeeded)
  uint64_t genctr = 0;

  // Connections it makes carry this owner.
  std::string ConnOwner() const { return "discovery:" + id; }
};

}  // namespace nvmf_ublk::daemon

#endif  // NVMF_UBLK_DAEMON_DAEMON_PARTS_H_
