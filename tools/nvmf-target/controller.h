// One NVMe controller of the target (dynamic controller model, NVMe-oF 1.1 §3.3.1): created by an
// admin queue Connect, joined by I/O queue Connects that present its CNTLID, destroyed when its
// admin connection goes (host disconnect, keep-alive timeout, Stop), which also closes its I/O
// queues, as a real target does.
//
// Threads: registers are atomics written on the admin connection's thread. The connection table is
// guarded by mu_; a Connection removes itself under mu_ before its thread ends, so a pointer found
// under mu_ stays valid while mu_ is held. Lock order: Target::mu_ -> Controller::mu_ ->
// Connection::mu_.
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_CONTROLLER_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_CONTROLLER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "nvme/commands.h"
#include "subsystem.h"

namespace nvmf_ublk::target {

class Connection;

class Controller {
 public:
  Controller(uint16_t cntlid, const Subsystem* subsystem, size_t port_index, std::string hostnqn,
             std::array<uint8_t, 16> hostid, uint32_t kato_ms, uint16_t max_io_queues);

  uint16_t cntlid() const { return cntlid_; }
  const Subsystem& subsystem() const { return *subsystem_; }
  bool discovery() const { return subsystem_->discovery(); }
  size_t port_index() const { return port_index_; }
  const std::string& hostnqn() const { return hostnqn_; }
  const std::array<uint8_t, 16>& hostid() const { return hostid_; }
  uint16_t max_io_queues() const { return max_io_queues_; }

  // Controller registers and features (Base 2.0 §3.1.3, §5.27.1).
  std::atomic<uint32_t> cc{0};
  std::atomic<uint32_t> csts{0};
  std::atomic<uint32_t> kato_ms{0};
  // With TBKAS: when a command last arrived on any queue of this controller (MonotonicNanos).
  std::atomic<int64_t> last_command_ns{0};
  bool tbkas = false;
  std::atomic<uint32_t> aec{0};             // Asynchronous Event Configuration
  std::atomic<uint32_t> queues_feature{0};  // Number of Queues DW0 (NSQA | NCQA << 16), 0-based
  std::atomic<bool> queues_set{false};
  std::atomic<bool> write_cache_enabled{true};

  bool enabled() const { return (cc.load() & nvme::kCcEnable) && (csts.load() & nvme::kCstsReady); }
  // Largest I/O QID a Connect may use: the Number of Queues granted, else the configured maximum.
  uint16_t max_qid() const;

  void AttachAdmin(Connection* conn);
  void DetachAdmin(Connection* conn);
  // False if `qid` already has a connection or the controller was removed.
  bool AttachIo(uint16_t qid, Connection* conn);
  void DetachIo(uint16_t qid, Connection* conn);
  size_t io_queue_count() const;

  // Aborts the held command `cid` on I/O queue `sqid` (Abort, Base 2.0 §5.1). False if not found.
  bool AbortOnQueue(uint16_t sqid, uint16_t cid);
  // Reports an asynchronous event if `aec_bit` is enabled in the Asynchronous Event Configuration:
  // it completes an outstanding AER on the admin queue now or when the next one arrives.
  void NotifyEvent(const nvme::AsyncEvent& event, uint32_t aec_bit);
  // Closes the I/O queue connections (controller reset or teardown); the admin one stays.
  void ShutdownIoQueues();
  // Closes every connection of the controller.
  void ShutdownAll();
  // The controller is going away (its admin connection ended): refuses new I/O queues and closes
  // the existing ones.
  void Remove();

 private:
  const uint16_t cntlid_;
  const Subsystem* const subsystem_;
  const size_t port_index_;
  const std::string hostnqn_;
  const std::array<uint8_t, 16> hostid_;
  const uint16_t max_io_queues_;

  mutable std::mutex mu_;
  bool removed_ = false;
  Connection* admin_ = nullptr;
  std::map<uint16_t, Connection*> io_;
};

}  // namespace nvmf_ublk::target

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_CONTROLLER_H_
