// One ublk block device, /dev/ublkb<N>: control-plane life cycle plus its queues.
//
//   Create:  ADD_DEV -> SET_PARAMS -> open /dev/ublkcN -> queue q starts on reactor q (FETCH every
//            tag) -> START_DEV (returns once every tag is fetched; the disk then appears)
//   Recover: GET_DEV_INFO/GET_PARAMS -> START_USER_RECOVERY (retried while the old server is still
//            exiting) -> open /dev/ublkcN -> queues start -> END_USER_RECOVERY; the kernel then
//            re-issues what the dead server had in flight and releases what it queued meanwhile.
//   Stop:    STOP_DEV (the disk goes; in-flight I/O is committed first, then the kernel aborts
//            every fetched tag) -> wait for every queue to stop -> unmap, close -> DEL_DEV
//   HandOver: the server process is about to exit and leave the device to its successor: new
//            requests are held (never reach the backend), those in the backend are completed and
//            committed (bounded), then QUIESCE_DEV where the kernel has it. The process exits
//            next; the kernel keeps the disk and re-issues the held requests to the next server.
//
// Control calls block and run on the caller's thread (the daemon's control thread), never on a
// reactor. With recovery (USER_RECOVERY | USER_RECOVERY_REISSUE, requested when the kernel has
// them) the device survives a crash of this process: I/O is queued until a new process calls
// Recover with the same id (DESIGN.md §4).
#ifndef NVMF_UBLK_UBLK_DEVICE_H_
#define NVMF_UBLK_UBLK_DEVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "io/reactor.h"
#include "ublk/backend.h"
#include "ublk/control.h"
#include "ublk/params.h"
#include "ublk/queue.h"
#include "ublk/uapi.h"

namespace nvmf_ublk::ublk {

// What happens to I/O when the server process dies (ANCHORS.md (c), recovery modes).
enum class RecoveryMode {
  kNone,     // the device is removed; outstanding I/O fails
  kReissue,  // USER_RECOVERY | USER_RECOVERY_REISSUE: I/O waits and is re-issued on recovery
  kFailIo,   // USER_RECOVERY | USER_RECOVERY_FAIL_IO (6.13+): I/O fails, the device stays
};

struct DeviceOptions {
  int32_t dev_id = -1;         // -1: the kernel picks the lowest free id
  uint16_t nr_queues = 1;      // queue q runs on reactors[q]; the kernel caps it at the CPUs
  uint16_t queue_depth = 128;  // tags per queue, <= 4096
  uint32_t max_io_bytes = 512 * 1024;  // per-tag buffer, page multiple, <= 32 MiB
  // Requested only when GET_FEATURES (or the 6.1 assumption) lists the flags; otherwise the
  // device is created without recovery and a warning is logged.
  RecoveryMode recovery = RecoveryMode::kReissue;
  int64_t start_timeout_ns = 30'000'000'000;  // START_DEV / END_USER_RECOVERY
  int64_t stop_timeout_ns = 60'000'000'000;   // STOP_DEV + queue teardown, then DEL_DEV
  // Recover: how long to wait for the old server to have exited (device QUIESCED, char dev closed).
  int64_t recover_wait_ns = 30'000'000'000;
  // Create: runs after ADD_DEV and SET_PARAMS, before START_DEV makes the disk appear (and udev
  // see it): e.g. to publish what udev rules read. An error fails Create.
  std::function<absl::Status(uint32_t dev_id)> before_start;
};

struct HandOverReport {
  uint32_t in_flight_left = 0;  // requests the backend had not completed by the deadline
  uint32_t held = 0;            // requests kept for the next server
  bool quiesced = false;        // QUIESCE_DEV succeeded
  absl::Status quiesce_error;   // why not, when the device has UBLK_F_QUIESCE
};

// Not thread-safe: create, stop and destroy it from one control thread (never a reactor).
class UblkDevice {
 public:
  // Creates and starts a device with exactly `params` (size, block sizes, limits). `reactors` must
  // be running (Reactor::StartThread) and hold at least options.nr_queues entries. `control` and
  // `backend` must outlive the device.
  static absl::StatusOr<std::unique_ptr<UblkDevice>> Create(ControlDevice* control,
                                                            const DeviceParams& params,
                                                            const DeviceOptions& options,
                                                            std::span<io::Reactor* const> reactors,
                                                            BlockBackend* backend);

  // Takes over device `dev_id`, left by a server process that died (created with recovery). Queue
  // count, depth and buffer size come from the kernel (options' values for those are ignored).
  // Failing before START_USER_RECOVERY succeeded (e.g. the old server is still alive) leaves the
  // device as it was; failing after it stops and deletes the device (the kernel refuses a second
  // START_USER_RECOVERY per crash until queues are ready again: the device would hang for good).
  static absl::StatusOr<std::unique_ptr<UblkDevice>> Recover(ControlDevice* control,
                                                             uint32_t dev_id,
                                                             const DeviceOptions& options,
                                                             std::span<io::Reactor* const> reactors,
                                                             BlockBackend* backend);

  // Stops and deletes the device if Stop() was not called.
  ~UblkDevice();
  UblkDevice(const UblkDevice&) = delete;
  UblkDevice& operator=(const UblkDevice&) = delete;

  // STOP_DEV, waits for every queue to stop, DEL_DEV. Idempotent; the first error is returned.
  absl::Status Stop();
  // After a Stop whose queues did not stop in time: they (and the char device) are kept alive for
  // good, and may still call the backend, which must then outlive this object (and fail what it
  // gets: multipath::NamespaceHead::Abandon).
  bool queues_kept() const { return queues_kept_; }
  // Leaves the device to the next server process (see the top): returns once the backend has
  // nothing in flight (or `deadline_ns` passed) and the device is quiesced where it can be. The
  // object then no longer owns the kernel device (destroying it does not stop it), and its queues
  // and buffers stay allocated: the caller must exit the process soon, without using the device.
  HandOverReport HandOver(int64_t deadline_ns);

  // The namespace behind the device changed size: the disk's capacity becomes `bytes` (a multiple
  // of the logical block) and the kernel tells its users (a uevent). kUnimplemented where the
  // kernel's ublk cannot (UBLK_F_UPDATE_SIZE, 6.16+).
  absl::Status Resize(uint64_t bytes);

  uint32_t dev_id() const { return info_.dev_id; }
  std::string block_path() const;  // /dev/ublkb<N>
  std::string char_path() const;   // /dev/ublkc<N>
  const DeviceParams& params() const { return params_; }
  // ADD_DEV's answer (granted flags, queues, depth, buffer size) or GET_DEV_INFO's on recovery.
  const uapi::ublksrv_ctrl_dev_info& info() const { return info_; }
  uint16_t nr_queues() const { return info_.nr_hw_queues; }
  bool recoverable() const { return info_.flags & uapi::UBLK_F_USER_RECOVERY; }
  const UblkQueue& queue(uint16_t q) const { return *queues_[q]; }

 private:
  struct QueueSync;

  UblkDevice(ControlDevice* control, const DeviceOptions& options, BlockBackend* backend);
  absl::Status OpenCharDevice();
  // Maps and starts queue q on reactors[q] for each queue of info_.
  absl::Status StartQueues(std::span<io::Reactor* const> reactors);
  // START_DEV or END_USER_RECOVERY, given up early if a queue fails.
  CommandWait StartWait() const;
  // Waits (bounded) until every started queue stopped, repeating STOP_DEV for late fetchers.
  absl::Status StopQueues(int64_t deadline_ns);
  absl::Status Teardown();

  ControlDevice* control_;
  DeviceOptions options_;
  BlockBackend* backend_;
  uapi::ublksrv_ctrl_dev_info info_{};
  DeviceParams params_;
  bool added_ = false;  // the kernel has the device: DEL_DEV on teardown
  bool torn_down_ = false;
  bool queues_kept_ = false;
  absl::Status teardown_status_;
  UniqueFd char_fd_;
  std::vector<std::shared_ptr<UblkQueue>> queues_;
  std::shared_ptr<QueueSync> sync_;
};

}  // namespace nvmf_ublk::ublk

#endif  // NVMF_UBLK_UBLK_DEVICE_H_
