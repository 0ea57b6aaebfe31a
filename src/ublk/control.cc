#include "ublk/control.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"

namespace nvmf_ublk::ublk {
namespace {

constexpr uint64_t kCancelUserData = ~uint64_t{0};
// How long a cancelled command gets to report back before we stop waiting for it (its CQE is
// then skipped as stale by the next command).
constexpr int64_t kCancelGraceNs = 5'000'000'000;
constexpr int64_t kWaitSliceNs = 50'000'000;

uapi::ublksrv_ctrl_cmd Header(uint32_t dev_id) {
  uapi::ublksrv_ctrl_cmd cmd;
  std::memset(&cmd, 0, sizeof(cmd));
  cmd.dev_id = dev_id;
  cmd.queue_id = static_cast<uint16_t>(-1);
  return cmd;
}

// The kernel's answer to an opcode encoding it does not know.
// ENOTSUPP (524) is the kernel-internal "not supported" some releases leak to userspace.
constexpr int kENOTSUPP = 524;
bool EncodingRejected(int rc) { return rc == -EINVAL || rc == -EOPNOTSUPP || rc == -kENOTSUPP; }

}  // namespace

// --- UringControlTransport
// ------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<UringControlTransport>> UringControlTransport::Open(
    const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT || err == ENODEV || err == ENXIO) {
      return absl::FailedPreconditionError(
          absl::StrCat("kernel has no ublk driver: ", path, ": ", strerror(err),
                       "; run `modprobe ublk_drv` (CONFIG_BLK_DEV_UBLK, Linux 6.0+)"));
    }
    if (err == EACCES || err == EPERM) {
      return absl::PermissionDeniedError(absl::StrCat(
          "open ", path, ": ", strerror(err), " (ublk devices need root or CAP_SYS_ADMIN)"));
    }
    return ErrnoToStatus(err, "open " + path);
  }
  std::unique_ptr<UringControlTransport> t(new UringControlTransport());
  t->fd_ = std::move(fd);
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  params.flags = IORING_SETUP_SQE128;
  const int rc = io_uring_queue_init_params(4, &t->ring_, &params);
  if (rc < 0) return ErrnoToStatus(rc, "io_uring_queue_init (ublk control, SQE128)");
  t->ring_ready_ = true;
  return t;
}

UringControlTransport::~UringControlTransport() {
  if (ring_ready_) io_uring_queue_exit(&ring_);
}

int UringControlTransport::Execute(uint32_t cmd_op, const uapi::ublksrv_ctrl_cmd& cmd,
                                   const CommandWait& wait) {
  std::lock_guard<std::mutex> lock(mu_);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {  // only stale cancels can be queued: flush them
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return -EBUSY;
  }
  std::memset(static_cast<void*>(sqe), 0, 2 * sizeof(io_uring_sqe));  // SQE128: two slots
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd_.get();
  sqe->cmd_op = cmd_op;
  static_assert(sizeof(cmd) <= 80, "control command must fit the SQE128 command area");
  std::memcpy(sqe->cmd, &cmd, sizeof(cmd));
  const uint64_t seq = ++seq_;
  io_uring_sqe_set_data64(sqe, seq);
  const int rc = io_uring_submit(&ring_);
  if (rc < 0) return rc;
  return WaitFor(seq, wait);
}

int UringControlTransport::WaitFor(uint64_t seq, const CommandWait& wait) {
  int64_t cancel_deadline = -1;  // set once the command has been cancelled
  int cancel_result = 0;
  while (true) {
    const int64_t now = MonotonicNanos();
    int64_t slice = kWaitSliceNs;
    if (cancel_deadline < 0 && wait.deadline_ns >= 0) {
      slice = std::max<int64_t>(0, std::min(slice, wait.deadline_ns - now));
    }
    __kernel_timespec ts{slice / 1'000'000'000, slice % 1'000'000'000};
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
    if (rc == 0 && cqe != nullptr) {
      const uint64_t data = io_uring_cqe_get_data64(cqe);
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      if (data != seq) continue;  // the cancel's own CQE, or a stale command's
      // A cancelled command that finished anyway reports its own result.
      if (cancel_deadline >= 0 && (res == -EINTR || res == -ECANCELED)) return cancel_result;
      return res;
    }
    if (rc != -ETIME && rc != -EINTR && rc != 0) return rc;
    if (cancel_deadline >= 0) {
      if (MonotonicNanos() >= cancel_deadline) {
        NLOG(WARNING) << "ublk control command did not end after cancel; leaving it";
        return cancel_result;
      }
      continue;
    }
    const bool timed_out = wait.deadline_ns >= 0 && MonotonicNanos() >= wait.deadline_ns;
    const bool abandoned = !timed_out && wait.abandon && wait.abandon();
    if (!timed_out && !abandoned) continue;
    // The kernel's waits in START_DEV/END_USER_RECOVERY/DEL_DEV are interruptible: cancelling the
    // io-wq work signals the worker and the command returns -EINTR.
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr) {
      std::memset(static_cast<void*>(sqe), 0, 2 * sizeof(io_uring_sqe));
      io_uring_prep_cancel64(sqe, seq, 0);
      io_uring_sqe_set_data64(sqe, kCancelUserData);
      io_uring_submit(&ring_);
    }
    cancel_result = timed_out ? -ETIMEDOUT : -ECANCELED;
    cancel_deadline = MonotonicNanos() + kCancelGraceNs;
  }
}

// --- ControlDevice
// ----------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ControlDevice>> ControlDevice::Open(const std::string& path) {
  ASSIGN_OR_RETURN(auto transport, UringControlTransport::Open(path));
  return std::make_unique<ControlDevice>(std::move(transport));
}

ControlDevice::ControlDevice(std::unique_ptr<ControlTransport> transport)
    : transport_(std::move(transport)) {
  ProbeFeatures();
}

void ControlDevice::ProbeFeatures() {
  uint64_t features = 0;
  uapi::ublksrv_ctrl_cmd cmd = Header(static_cast<uint32_t>(-1));
  cmd.addr = reinterpret_cast<uintptr_t>(&features);
  cmd.len = uapi::UBLK_FEATURES_LEN;
  const int rc = transport_->Execute(uapi::UBLK_U_CMD_GET_FEATURES, cmd, {});
  if (rc == 0) {
    features_ = features;
    features_probed_ = true;
    encoding_ = Encoding::kIoctl;  // GET_FEATURES exists only ioctl-encoded (6.5+)
    NLOG(INFO) << "ublk: kernel features 0x" << std::hex << features << std::dec << " ("
               << FeatureNames(features) << ")";
  } else {
    features_ = uapi::kFeaturesLinux61;
    NLOG(INFO) << "ublk: GET_FEATURES unsupported (" << strerror(-rc)
               << "), assuming the Linux 6.1 feature set (" << FeatureNames(features_) << ")";
  }
}

int ControlDevice::Run(uint32_t nr, uapi::ublksrv_ctrl_cmd& cmd, const CommandWait& wait) {
  const bool reads = nr == uapi::UBLK_CMD_GET_DEV_INFO || nr == uapi::UBLK_CMD_GET_PARAMS ||
                     nr == uapi::UBLK_CMD_GET_DEV_INFO2 || nr == uapi::UBLK_CMD_GET_QUEUE_AFFINITY;
  const uint32_t ioctl_op = reads ? uapi::CtrlIor(nr) : uapi::CtrlIowr(nr);
  Encoding encoding;
  {
    std::lock_guard<std::mutex> lock(mu_);
    encoding = encoding_;
  }
  if (encoding == Encoding::kLegacy) return transport_->Execute(nr, cmd, wait);
  const int rc = transport_->Execute(ioctl_op, cmd, wait);
  if (encoding == Encoding::kIoctl || !EncodingRejected(rc)) {
    if (rc >= 0 && encoding == Encoding::kUnknown) {
      std::lock_guard<std::mutex> lock(mu_);
      encoding_ = Encoding::kIoctl;
    }
    return rc;
  }
  // A 6.1-6.3 kernel knows only the plain numbers. If the legacy number is refused too (a kernel
  // without CONFIG_BLKDEV_UBLK_LEGACY_OPCODES), the ioctl-encoded attempt's error is the real one.
  const int legacy_rc = transport_->Execute(nr, cmd, wait);
  if (legacy_rc >= 0) {
    std::lock_guard<std::mutex> lock(mu_);
    encoding_ = Encoding::kLegacy;
    NLOG(INFO) << "ublk: kernel takes only legacy control opcodes";
    return legacy_rc;
  }
  return legacy_rc == -EOPNOTSUPP ? rc : legacy_rc;
}

absl::Status ControlDevice::CommandError(uint32_t nr, uint32_t dev_id, int rc) const {
  const std::string what =
      dev_id == static_cast<uint32_t>(-1)
          ? absl::StrCat("ublk ", ControlCommandName(nr))
          : absl::StrCat("ublk ", ControlCommandName(nr), " (device ", dev_id, ")");
  switch (-rc) {
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(
          absl::StrCat(what, ": permission denied (ublk devices need root or CAP_SYS_ADMIN)"));
    case ENODEV:
      if (nr != uapi::UBLK_CMD_ADD_DEV) {
        return absl::NotFoundError(absl::StrCat(what, ": no such ublk device"));
      }
      break;
    case EEXIST:
      if (nr == uapi::UBLK_CMD_ADD_DEV) {
        return absl::AlreadyExistsError(absl::StrCat(what, ": the device id is taken"));
      }
      break;
    case ETIMEDOUT:
      return absl::DeadlineExceededError(absl::StrCat(what, ": timed out (cancelled)"));
    case EBUSY:
      return absl::FailedPreconditionError(absl::StrCat(what, ": device busy"));
    default:
      break;
  }
  return ErrnoToStatus(rc, what);
}

absl::StatusOr<uapi::ublksrv_ctrl_dev_info> ControlDevice::AddDevice(
    const uapi::ublksrv_ctrl_dev_info& info) {
  uapi::ublksrv_ctrl_dev_info io = info;
  uapi::ublksrv_ctrl_cmd cmd = Header(info.dev_id);  // must equal info.dev_id
  cmd.addr = reinterpret_cast<uintptr_t>(&io);
  cmd.len = sizeof(io);
  const int rc = Run(uapi::UBLK_CMD_ADD_DEV, cmd, {});
  if (rc < 0) return CommandError(uapi::UBLK_CMD_ADD_DEV, info.dev_id, rc);
  return io;
}

absl::Status ControlDevice::SetParams(uint32_t dev_id, const uapi::ublk_params& params) {
  uapi::ublk_params p = params;
  uapi::ublksrv_ctrl_cmd cmd = Header(dev_id);
  cmd.addr = reinterpret_cast<uintptr_t>(&p);
  cmd.len = sizeof(p);
  const int rc = Run(uapi::UBLK_CMD_SET_PARAMS, cmd, {});
  if (rc < 0) return CommandError(uapi::UBLK_CMD_SET_PARAMS, dev_id, rc);
  return absl::OkStatus();
}

absl::StatusOr<uapi::ublk_params> ControlDevice::GetParams(uint32_t dev_id) {
  uapi::ublk_params p;
  std::memset(&p, 0, sizeof(p));
  p.len = sizeof(p);
  uapi::ublksrv_ctrl_cmd cmd = Header(dev_id);
  cmd.addr = reinterpret_cast<uintptr_t>(&p);
  cmd.len = sizeof(p);
  const int rc = Run(uapi::UBLK_CMD_GET_PARAMS, cmd, {});
  if (rc < 0) return CommandError(uapi::UBLK_CMD_GET_PARAMS, dev_id, rc);
  return p;
}

absl::Status ControlDevice::StartDevice(uint32_t dev_id, pid_t server_pid,
                                        const CommandWait& wait) {
  uapi::ublksrv_ctrl_cmd cmd = Header(dev_id);
  cmd.data[0] = static_cast<uint64_t>(server_pid);
  const int rc = Run(uapi::UBLK_CMD_START_DEV, cmd, wait);
  if (rc < 0) return CommandError(uapi::UBLK_CMD_START_DEV, dev_id, rc);
  return absl::OkStatus();
}

absl::Status ControlDevice::StopDevice(uint32_t dev_id, const CommandWait& wait) {
  uapi::ublksrv_ctrl_cmd cmd = Header(dev_id);
  const int rc = Run(uapi::UBLK_CMD_STOP_DEV, cmd, wait);
  if (rc < 0) return CommandError(uapi::UBLK_CMD_STOP_DEV, dev_id, rc);
  return absl::OkStatus();
}

absl::Status ControlDevice::DeleteDevice(uint32_t dev_id, const CommandWait& wait) {
  uapi::ublksrv_ctrl_cmd cmd = Header(dev_id);
  const int rc = Run(uapi::UBLK_CMD_DEL_DEV, cmd, wait);
  if (rc < 0) return CommandError(uapi::UBLK_CMD_DEL_DEV, dev_id, rc);
  return absl::OkStatus();
}

absl::StatusOr<uapi::ublksrv_ctrl_dev_info> ControlDevice::GetDeviceInfo(uint32_t dev_id) {
  // GET_DEV_INFO2 (6.2+, announced with UNPRIVILEGED_DEV) takes "/dev/ublkcN\0" in front of the
  // answer; GET_DEV_INFO is refused for unprivileged devices but works for root everywhere.
  const bool v2 = (features_ & uapi::UBLK_F_UNPRIVILEGED_DEV) != 0;
  struct {
    char path[32];
    uapi::ublksrv_ctrl_dev_info info;
  } buf;
  std::memset(&buf, 0, sizeof(buf));
  uapi::ublksrv_ctrl_cmd cmd = Header(dev_id);
  uint32_t nr = uapi::UBLK_CMD_GET_DEV_INFO;
  if (v2) {
    nr = uapi::UBLK_CMD_GET_DEV_INFO2;
    const std::string path = absl::StrCat("/dev/ublkc", dev_id);
    std::memcpy(buf.path, path.c_str(), path.size() + 1);
    cmd.dev_path_len = static_cast<uint16_t>(path.size() + 1);
    // The answer lands right after the path.
    cmd.addr = reinterpret_cast<uintptr_t>(buf.path);
    cmd.len = static_cast<uint16_t>(cmd.dev_path_len + sizeof(buf.info));
  } else {
    cmd.addr = reinterpret_cast<uintptr_t>(&buf.info);
    cmd.len = sizeof(buf.info);
  }
  const int rc = Run(nr, cmd, {});
  if (rc < 0) return CommandError(nr, dev_id, rc);
  if (v2) {
    uapi::ublksrv_ctrl_dev_info info;
    std::memcpy(&info, buf.path + cmd.dev_path_len, sizeof(info));
    return info;
  }
  return buf.info;
}

absl::Status ControlDevice::StartUserRecovery(uint32_t dev_id) {
  uapi::ublksrv_ctrl_cmd cmd = Header(dev_id);
  const int rc = Run(uapi::UBLK_CMD_START_USER_RECOVERY, cmd, {});
  if (rc < 0) return CommandError(uapi::UBLK_CMD_START_USER_RECOVERY, dev_id, rc);
  return absl::OkStatus();
}

absl::Status ControlDevice::EndUserRecovery(uint32_t dev_id, pid_t server_pid,
                                            const CommandWait& wait) {
  uapi::ublksrv_ctrl_cmd cmd = Header(dev_id);
  cmd.data[0] = static_cast<uint64_t>(server_pid);
  const int rc = Run(uapi::UBLK_CMD_END_USER_RECOVERY, cmd, wait);
  if (rc < 0) return CommandError(uapi::UBLK_CMD_END_USER_RECOVERY, dev_id, rc);
  return absl::OkStatus();
}

// --- Names --------------------------------------------------------------------------------------

absl::Status ControlDevice::QuiesceDevice(uint32_t dev_id, uint32_t timeout_ms,
                                          const CommandWait& wait) {
  uapi::ublksrv_ctrl_cmd cmd = Header(dev_id);
  cmd.data[0] = timeout_ms;
  const int rc = Run(uapi::UBLK_CMD_QUIESCE_DEV_NR, cmd, wait);
  if (rc < 0) return CommandError(uapi::UBLK_CMD_QUIESCE_DEV_NR, dev_id, rc);
  return absl::OkStatus();
}

absl::Status ControlDevice::UpdateSize(uint32_t dev_id, uint64_t sectors) {
  uapi::ublksrv_ctrl_cmd cmd = Header(dev_id);
  cmd.data[0] = sectors;
  const int rc = Run(uapi::UBLK_CMD_UPDATE_SIZE_NR, cmd, {});
  if (rc < 0) return CommandError(uapi::UBLK_CMD_UPDATE_SIZE_NR, dev_id, rc);
  return absl::OkStatus();
}

const char* ControlCommandName(uint32_t nr) {
  switch (nr) {
    case uapi::UBLK_CMD_GET_QUEUE_AFFINITY:
      return "GET_QUEUE_AFFINITY";
    case uapi::UBLK_CMD_GET_DEV_INFO:
      return "GET_DEV_INFO";
    case uapi::UBLK_CMD_ADD_DEV:
      return "ADD_DEV";
    case uapi::UBLK_CMD_DEL_DEV:
      return "DEL_DEV";
    case uapi::UBLK_CMD_START_DEV:
      return "START_DEV";
    case uapi::UBLK_CMD_STOP_DEV:
      return "STOP_DEV";
    case uapi::UBLK_CMD_SET_PARAMS:
      return "SET_PARAMS";
    case uapi::UBLK_CMD_GET_PARAMS:
      return "GET_PARAMS";
    case uapi::UBLK_CMD_START_USER_RECOVERY:
      return "START_USER_RECOVERY";
    case uapi::UBLK_CMD_END_USER_RECOVERY:
      return "END_USER_RECOVERY";
    case uapi::UBLK_CMD_GET_DEV_INFO2:
      return "GET_DEV_INFO2";
    case uapi::UBLK_CMD_GET_FEATURES_NR:
      return "GET_FEATURES";
    case uapi::UBLK_CMD_DEL_DEV_ASYNC_NR:
      return "DEL_DEV_ASYNC";
    case uapi::UBLK_CMD_UPDATE_SIZE_NR:
      return "UPDATE_SIZE";
    case uapi::UBLK_CMD_QUIESCE_DEV_NR:
      return "QUIESCE_DEV";
    default:
      return "UNKNOWN";
  }
}

std::string FeatureNames(uint64_t flags) {
  static constexpr const char* kNames[] = {"SUPPORT_ZERO_COPY",
                                           "URING_CMD_COMP_IN_TASK",
                                           "NEED_GET_DATA",
                                           "USER_RECOVERY",
                                           "USER_RECOVERY_REISSUE",
                                           "UNPRIVILEGED_DEV",
                                           "CMD_IOCTL_ENCODE",
                                           "USER_COPY",
                                           "ZONED",
                                           "USER_RECOVERY_FAIL_IO",
                                           "UPDATE_SIZE",
                                           "AUTO_BUF_REG",
                                           "QUIESCE",
                                           "PER_IO_DAEMON",
                                           "BUF_REG_OFF_DAEMON"};
  std::string out;
  for (unsigned bit = 0; bit < 64; ++bit) {
    if (!(flags & (uint64_t{1} << bit))) continue;
    if (!out.empty()) out += '|';
    if (bit < std::size(kNames)) {
      out += kNames[bit];
    } else {
      absl::StrAppend(&out, "bit", bit);
    }
  }
  return out.empty() ? "none" : out;
}

const char* DeviceStateName(uint16_t state) {
  switch (state) {
    case uapi::UBLK_S_DEV_DEAD:
      return "DEAD";
    case uapi::UBLK_S_DEV_LIVE:
      return "LIVE";
    case uapi::UBLK_S_DEV_QUIESCED:
      return "QUIESCED";
    case uapi::UBLK_S_DEV_FAIL_IO:
      return "FAIL_IO";
    default:
      return "UNKNOWN";
  }
}

}  // namespace nvmf_ublk::ublk
