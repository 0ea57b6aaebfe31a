// nvmf-ublkd's private records, shared by daemon.cc and daemon_recovery.cc (not part of any API).
#ifndef NVMF_UBLK_DAEMON_DAEMON_PARTS_H_
#define NVMF_UBLK_DAEMON_DAEMON_PARTS_H_

#include <memory>
#include <string>
#include <vector>

#include "daemon/daemon.h"

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

}  // namespace nvmf_ublk::daemon

#endif  // NVMF_UBLK_DAEMON_DAEMON_PARTS_H_
