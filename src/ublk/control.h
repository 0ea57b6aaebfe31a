// The ublk control device, /dev/ublk-control: creating, configuring, starting, stopping, deleting
// and recovering ublk devices.
//
// Control commands are IORING_OP_URING_CMD on a small dedicated SQE128 io_uring (the command
// header sits in the SQE's 80-byte command area). They are off the data path and block the caller;
// the kernel runs them in an io-wq worker. START_DEV and END_USER_RECOVERY wait until every queue
// has fetched every tag, so call them from a thread other than the queues' reactors.
//
// Kernel differences handled here (ANCHORS.md (c), DESIGN.md §4):
// - Opcodes: the ioctl-encoded UBLK_U_CMD_* are sent first; a kernel that rejects them with
//   EINVAL/EOPNOTSUPP (6.1-6.3) gets the legacy numbers, and the working encoding is remembered.
// - Features: GET_FEATURES (6.5+) is probed once; without it the 6.1 feature set is assumed. Only
//   flags in features() should be requested from ADD_DEV (the kernel also masks what it lacks and
//   returns the granted flags).
#ifndef NVMF_UBLK_UBLK_CONTROL_H_
#define NVMF_UBLK_UBLK_CONTROL_H_

#include <liburing.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "ublk/uapi.h"

namespace nvmf_ublk::ublk {

inline constexpr char kControlPath[] = "/dev/ublk-control";

// How long a blocking command may take. The command is cancelled (the kernel's waits are
// interruptible) when `deadline_ns` (CLOCK_MONOTONIC, -1 = none) passes or `abandon` returns true;
// the call then returns -ETIMEDOUT / -ECANCELED.
struct CommandWait {
  int64_t deadline_ns = -1;
  std::function<bool()> abandon;
};

// Carries one control command to the kernel and returns the CQE's result (>= 0, or -errno).
// Thread-safe. The seam for tests (a fake kernel).
class ControlTransport {
 public:
  virtual ~ControlTransport() = default;
  virtual int Execute(uint32_t cmd_op, const uapi::ublksrv_ctrl_cmd& cmd,
                      const CommandWait& wait) = 0;
};

// The real transport: /dev/ublk-control and its own SQE128 ring; one command at a time.
class UringControlTransport final : public ControlTransport {
 public:
  // Clear errors: a missing /dev/ublk-control is kFailedPrecondition("kernel has no ublk driver:
  // ... run `modprobe ublk_drv`"); EACCES/EPERM is kPermissionDenied.
  static absl::StatusOr<std::unique_ptr<UringControlTransport>> Open(const std::string& path);
  ~UringControlTransport() override;

  int Execute(uint32_t cmd_op, const uapi::ublksrv_ctrl_cmd& cmd, const CommandWait& wait) override;

 private:
  UringControlTransport() = default;
  int WaitFor(uint64_t seq, const CommandWait& wait);

  std::mutex mu_;
  UniqueFd fd_;
  io_uring ring_{};
  bool ring_ready_ = false;
  uint64_t seq_ = 0;  // user_data of the latest command; older CQEs are stale and skipped
};

class ControlDevice {
 public:
  // Opens `path` and probes the kernel's features.
  static absl::StatusOr<std::unique_ptr<ControlDevice>> Open(
      const std::string& path = kControlPath);
  // Over any transport (tests); probes the kernel's features.
  explicit ControlDevice(std::unique_ptr<ControlTransport> transport);

  // UBLK_F_* the kernel supports: GET_FEATURES' answer, or kFeaturesLinux61 on kernels without it.
  uint64_t features() const { return features_; }
  bool features_probed() const { return features_probed_; }
  // Whether the ioctl-encoded opcodes are in use (false: legacy, or not known yet).
  bool ioctl_encoding() const { return encoding_ == Encoding::kIoctl; }

  // ADD_DEV. `info.dev_id` = -1 lets the kernel choose. Returns the kernel's view: dev_id, granted
  // flags, nr_hw_queues (capped at the CPU count), max_io_buf_bytes (page-rounded).
  absl::StatusOr<uapi::ublksrv_ctrl_dev_info> AddDevice(const uapi::ublksrv_ctrl_dev_info& info);
  absl::Status SetParams(uint32_t dev_id, const uapi::ublk_params& params);
  absl::StatusOr<uapi::ublk_params> GetParams(uint32_t dev_id);
  // START_DEV: blocks until every queue has fetched every tag, then adds /dev/ublkb<dev_id>.
  absl::Status StartDevice(uint32_t dev_id, pid_t server_pid, const CommandWait& wait = {});
  // STOP_DEV: removes the disk (waits for I/O in flight) and aborts every fetched tag.
  absl::Status StopDevice(uint32_t dev_id, const CommandWait& wait = {});
  // DEL_DEV: waits until /dev/ublkc<dev_id> is closed and unmapped everywhere.
  absl::Status DeleteDevice(uint32_t dev_id, const CommandWait& wait = {});
  // GET_DEV_INFO2 where the kernel has it (6.2+, needs the char device path), else GET_DEV_INFO.
  absl::StatusOr<uapi::ublksrv_ctrl_dev_info> GetDeviceInfo(uint32_t dev_id);
  // START_USER_RECOVERY: kFailedPrecondition with "busy" while the old server still exits.
  absl::Status StartUserRecovery(uint32_t dev_id);
  // END_USER_RECOVERY: blocks like StartDevice, then resumes the queued and re-issued I/O.
  absl::Status EndUserRecovery(uint32_t dev_id, pid_t server_pid, const CommandWait& wait = {});
  // QUIESCE_DEV (6.15+, devices added with UBLK_F_QUIESCE): the kernel stops handing requests to
  // the server, waits up to `timeout_ms` for every queue to have an idle tag, aborts the fetched
  // tags and leaves the device QUIESCED, ready for START_USER_RECOVERY by the next server.
  absl::Status QuiesceDevice(uint32_t dev_id, uint32_t timeout_ms, const CommandWait& wait = {});
  // UPDATE_SIZE (6.16+, UBLK_F_UPDATE_SIZE): the disk's capacity becomes `sectors` x 512 bytes.
  absl::Status UpdateSize(uint32_t dev_id, uint64_t sectors);

 private:
  enum class Encoding { kUnknown, kIoctl, kLegacy };

  // Runs command `nr` (legacy number; also the ioctl number) with the encoding fallback.
  int Run(uint32_t nr, uapi::ublksrv_ctrl_cmd& cmd, const CommandWait& wait);
  absl::Status CommandError(uint32_t nr, uint32_t dev_id, int rc) const;
  void ProbeFeatures();

  std::unique_ptr<ControlTransport> transport_;
  std::mutex mu_;  // guards encoding_
  Encoding encoding_ = Encoding::kUnknown;
  uint64_t features_ = uapi::kFeaturesLinux61;
  bool features_probed_ = false;
};

// "ADD_DEV", "START_DEV", ... for a control command number.
const char* ControlCommandName(uint32_t nr);
// "USER_RECOVERY|USER_COPY|..." for UBLK_F_* bits.
std::string FeatureNames(uint64_t flags);
// "LIVE", "QUIESCED", ...
const char* DeviceStateName(uint16_t state);

}  // namespace nvmf_ublk::ublk

#endif  // NVMF_UBLK_UBLK_CONTROL_H_
