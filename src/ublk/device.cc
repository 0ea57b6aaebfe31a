#include "ublk/device.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"

namespace nvmf_ublk::ublk {
namespace {

constexpr int64_t kRetrySliceNs = 100'000'000;
constexpr int64_t kStopRepeatNs = 1'000'000'000;
constexpr int64_t kCharDeviceWaitNs = 5'000'000'000;

uint64_t RecoveryFlags(RecoveryMode mode) {
  switch (mode) {
    case RecoveryMode::kNone:
      return 0;
    case RecoveryMode::kReissue:
      return uapi::UBLK_F_USER_RECOVERY | uapi::UBLK_F_USER_RECOVERY_REISSUE;
    case RecoveryMode::kFailIo:
      return uapi::UBLK_F_USER_RECOVERY | uapi::UBLK_F_USER_RECOVERY_FAIL_IO;
  }
  return 0;
}

void SleepNanos(int64_t ns) { std::this_thread::sleep_for(std::chrono::nanoseconds(ns)); }

// Keeps a queue alive for the rest of the process (see Teardown).
void KeepForever(std::shared_ptr<UblkQueue> queue) {
  static std::mutex mu;
  static auto* kept = new std::vector<std::shared_ptr<UblkQueue>>();
  std::lock_guard<std::mutex> lock(mu);
  kept->push_back(std::move(queue));
}

absl::Status CheckOptions(const DeviceOptions& o, size_t nr_reactors) {
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  if (o.nr_queues == 0 || o.nr_queues > nr_reactors) {
    return absl::InvalidArgumentError(absl::StrCat("ublk: ", o.nr_queues, " queues need as many ",
                                                   "reactors; have ", nr_reactors));
  }
  if (o.queue_depth == 0 || o.queue_depth > uapi::UBLK_MAX_QUEUE_DEPTH) {
    return absl::InvalidArgumentError(absl::StrCat("ublk: queue depth ", o.queue_depth,
                                                   " not in 1..", uapi::UBLK_MAX_QUEUE_DEPTH));
  }
  if (o.max_io_bytes < page || o.max_io_bytes % page != 0 ||
      o.max_io_bytes > uapi::kMaxIoBufBytes) {
    return absl::InvalidArgumentError(absl::StrCat("ublk: max_io_bytes ", o.max_io_bytes,
                                                   " must be a page multiple up to 32 MiB"));
  }
  return absl::OkStatus();
}

}  // namespace

// Shared between the device (control thread) and the closures it posts to the reactors, so that
// neither outlives what it touches.
struct UblkDevice::QueueSync {
  std::mutex mu;
  std::condition_variable cv;
  bool abandoned = false;  // queues not started yet must not start any more
  int started = 0;
  int stopped = 0;
};

UblkDevice::UblkDevice(ControlDevice* control, const DeviceOptions& options, BlockBackend* backend)
    : control_(control), options_(options), backend_(backend) {}

UblkDevice::~UblkDevice() {
  const absl::Status s = Teardown();
  if (!s.ok()) NLOG(ERROR) << "ublk device " << info_.dev_id << ": teardown: " << s;
}

std::string UblkDevice::block_path() const { return absl::StrCat("/dev/ublkb", info_.dev_id); }
std::string UblkDevice::char_path() const { return absl::StrCat("/dev/ublkc", info_.dev_id); }

absl::StatusOr<std::unique_ptr<UblkDevice>> UblkDevice::Create(
    ControlDevice* control, const DeviceParams& params, const DeviceOptions& options,
    std::span<io::Reactor* const> reactors, BlockBackend* backend) {
  RETURN_IF_ERROR(CheckOptions(options, reactors.size()));
  RETURN_IF_ERROR(
      BuildParams(params, options.max_io_bytes).status());  // before touching the kernel

  const uint64_t features = control->features();
  uint64_t flags = uapi::UBLK_F_CMD_IOCTL_ENCODE & features;
  const uint64_t recovery = RecoveryFlags(options.recovery);
  if ((features & recovery) == recovery) {
    flags |= recovery;
    // A clean hand-over to the next server (HandOver) where the kernel can quiesce (6.15+).
    if (recovery != 0) flags |= features & uapi::UBLK_F_QUIESCE;
    flags |= features & uapi::UBLK_F_UPDATE_SIZE;  // a namespace that grows or shrinks (6.16+)
  } else {
    NLOG(WARNING) << "ublk: kernel lacks " << FeatureNames(recovery & ~features)
                  << ": the device will not survive a restart of this process";
  }

  std::unique_ptr<UblkDevice> dev(new UblkDevice(control, options, backend));
  uapi::ublksrv_ctrl_dev_info req;
  std::memset(&req, 0, sizeof(req));
  req.nr_hw_queues = options.nr_queues;
  req.queue_depth = options.queue_depth;
  req.max_io_buf_bytes = options.max_io_bytes;
  req.dev_id = static_cast<uint32_t>(options.dev_id);
  req.ublksrv_pid = getpid();
  req.flags = flags;
  ASSIGN_OR_RETURN(dev->info_, control->AddDevice(req));
  dev->added_ = true;  // from here on, failures delete the kernel device again (destructor)
  const uapi::ublksrv_ctrl_dev_info& info = dev->info_;
  if (info.nr_hw_queues != options.nr_queues) {
    NLOG(INFO) << "ublk " << info.dev_id << ": kernel granted " << info.nr_hw_queues << " of "
               << options.nr_queues << " queues (one per CPU at most)";
  }
  if ((info.flags & recovery) != (flags & recovery)) {
    NLOG(WARNING) << "ublk " << info.dev_id << ": kernel refused "
                  << FeatureNames(flags & recovery & ~info.flags);
  }

  ASSIGN_OR_RETURN(uapi::ublk_params uparams, BuildParams(params, info.max_io_buf_bytes));
  RETURN_IF_ERROR(control->SetParams(info.dev_id, uparams));
  dev->params_ = params;
  dev->params_.max_transfer_bytes = uparams.basic.max_sectors << 9;

  if (options.before_start) RETURN_IF_ERROR(options.before_start(info.dev_id));
  RETURN_IF_ERROR(dev->OpenCharDevice());
  RETURN_IF_ERROR(dev->StartQueues(reactors));
  RETURN_IF_ERROR(control->StartDevice(info.dev_id, getpid(), dev->StartWait()));
  NLOG(INFO) << "ublk: " << dev->block_path() << " up: " << ToString(dev->params_) << "; "
             << info.nr_hw_queues << " queues x " << info.queue_depth << " tags, buffers "
             << info.max_io_buf_bytes << ", flags " << FeatureNames(info.flags);
  return dev;
}

absl::StatusOr<std::unique_ptr<UblkDevice>> UblkDevice::Recover(
    ControlDevice* control, uint32_t dev_id, const DeviceOptions& options,
    std::span<io::Reactor* const> reactors, BlockBackend* backend) {
  std::unique_ptr<UblkDevice> dev(new UblkDevice(control, options, backend));
  ASSIGN_OR_RETURN(dev->info_, control->GetDeviceInfo(dev_id));
  const uapi::ublksrv_ctrl_dev_info& info = dev->info_;
  if (!(info.flags & uapi::UBLK_F_USER_RECOVERY)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "ublk device ", dev_id, " was created without USER_RECOVERY: it cannot be taken over"));
  }
  if (info.nr_hw_queues == 0 || info.nr_hw_queues > reactors.size()) {
    return absl::InvalidArgumentError(absl::StrCat("ublk device ", dev_id, " has ",
                                                   info.nr_hw_queues, " queues; have ",
                                                   reactors.size(), " reactors"));
  }
  ASSIGN_OR_RETURN(uapi::ublk_params uparams, control->GetParams(dev_id));
  dev->params_ = ParamsFromUblk(uparams);

  // The old server's exit is asynchronous: its io_uring is torn down, the kernel quiesces the
  // device (state QUIESCED) and the char device is released. Until then START_USER_RECOVERY says
  // busy.
  const int64_t deadline = MonotonicNanos() + options.recover_wait_ns;
  while (true) {
    const absl::Status s = control->StartUserRecovery(dev_id);
    if (s.ok()) break;
    if (s.code() != absl::StatusCode::kFailedPrecondition || MonotonicNanos() >= deadline) {
      absl::StatusOr<uapi::ublksrv_ctrl_dev_info> now = control->GetDeviceInfo(dev_id);
      std::string who;
      if (now.ok()) {
        who = absl::StrCat(
            " (state ", DeviceStateName(now->state), ", server pid ", now->ublksrv_pid,
            now->ublksrv_pid > 0 && kill(now->ublksrv_pid, 0) == 0 ? " still alive" : "", ")");
      }
      return absl::Status(s.code(), absl::StrCat(s.message(), who));
    }
    SleepNanos(kRetrySliceNs);
  }
  dev->added_ = true;  // from here on a failure tears the device down (the queues hold it)
  RETURN_IF_ERROR(dev->OpenCharDevice());
  RETURN_IF_ERROR(dev->StartQueues(reactors));
  RETURN_IF_ERROR(control->EndUserRecovery(dev_id, getpid(), dev->StartWait()));
  NLOG(INFO) << "ublk: " << dev->block_path() << " recovered: " << ToString(dev->params_) << "; "
             << info.nr_hw_queues << " queues x " << info.queue_depth << " tags";
  return dev;
}

absl::Status UblkDevice::OpenCharDevice() {
  // The node is created with the device; allow udev/devtmpfs a moment, and the old server's file
  // a moment to be released on recovery (the char device is exclusive).
  const std::string path = char_path();
  const int64_t deadline = MonotonicNanos() + kCharDeviceWaitNs;
  while (true) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      char_fd_.reset(fd);
      return absl::OkStatus();
    }
    const int err = errno;
    if ((err != ENOENT && err != EBUSY) || MonotonicNanos() >= deadline) {
      return ErrnoToStatus(err, "open " + path);
    }
    SleepNanos(10'000'000);
  }
}

absl::Status UblkDevice::StartQueues(std::span<io::Reactor* const> reactors) {
  const bool ioctl = (info_.flags & uapi::UBLK_F_CMD_IOCTL_ENCODE) != 0;
  for (uint16_t q = 0; q < info_.nr_hw_queues; ++q) {
    QueueConfig cfg;
    cfg.dev_id = info_.dev_id;
    cfg.q_id = q;
    cfg.depth = info_.queue_depth;
    cfg.max_io_bytes = info_.max_io_buf_bytes;
    cfg.char_fd = char_fd_.get();
    cfg.ioctl_encoding = ioctl;
    auto queue = std::make_shared<UblkQueue>(reactors[q], cfg, backend_);
    RETURN_IF_ERROR(queue->Init());
    queues_.push_back(std::move(queue));
  }
  sync_ = std::make_shared<QueueSync>();
  for (uint16_t q = 0; q < info_.nr_hw_queues; ++q) {
    reactors[q]->Post([sync = sync_, queue = queues_[q]] {
      {
        std::lock_guard<std::mutex> lock(sync->mu);
        if (sync->abandoned) return;
        ++sync->started;
      }
      queue->Start([sync] {
        std::lock_guard<std::mutex> lock(sync->mu);
        ++sync->stopped;
        sync->cv.notify_all();
      });
    });
  }
  return absl::OkStatus();
}

CommandWait UblkDevice::StartWait() const {
  CommandWait wait;
  wait.deadline_ns = MonotonicNanos() + options_.start_timeout_ns;
  wait.abandon = [this] {
    return std::any_of(queues_.begin(), queues_.end(), [](const auto& q) { return q->failed(); });
  };
  return wait;
}

absl::Status UblkDevice::Resize(uint64_t bytes) {
  if (!(control_->features() & uapi::UBLK_F_UPDATE_SIZE)) {
    return absl::UnimplementedError(
        "this kernel's ublk cannot change a device's size (UPDATE_SIZE needs Linux 6.16+)");
  }
  RETURN_IF_ERROR(control_->UpdateSize(info_.dev_id, bytes >> 9));
  params_.size_bytes = bytes;
  return absl::OkStatus();
}

absl::Status UblkDevice::Stop() { return Teardown(); }

HandOverReport UblkDevice::HandOver(int64_t deadline_ns) {
  HandOverReport report;
  if (torn_down_ || !added_) return report;
  auto holding = std::make_shared<std::atomic<size_t>>(0);
  for (const auto& q : queues_) {
    q->reactor()->Post([q, holding] {
      if (q->state() == UblkQueue::State::kRunning) q->Hold();
      holding->fetch_add(1, std::memory_order_acq_rel);
    });
  }
  // Once every queue holds, in_backend() only goes down.
  auto in_backend = [this] {
    uint32_t n = 0;
    for (const auto& q : queues_) n += q->in_backend();
    return n;
  };
  while ((holding->load(std::memory_order_acquire) < queues_.size() || in_backend() > 0) &&
         MonotonicNanos() < deadline_ns) {
    SleepNanos(1'000'000);
  }
  report.in_flight_left = in_backend();
  if (info_.flags & uapi::UBLK_F_QUIESCE) {
    const int64_t left_ms = std::max<int64_t>(100, (deadline_ns - MonotonicNanos()) / 1'000'000);
    report.quiesce_error = control_->QuiesceDevice(
        info_.dev_id, static_cast<uint32_t>(left_ms),
        {.deadline_ns = std::max(deadline_ns, MonotonicNanos() + 100'000'000)});
    report.quiesced = report.quiesce_error.ok();
  }
  for (const auto& q : queues_) report.held += q->held();
  // The kernel device now belongs to the next server: never stop or delete it from here, and
  // keep what the kernel may still touch (mappings, buffers, the char device) until exit.
  for (auto& q : queues_) KeepForever(q);
  queues_.clear();
  char_fd_.release();
  added_ = false;
  torn_down_ = true;
  return report;
}

absl::Status UblkDevice::StopQueues(int64_t deadline_ns) {
  std::unique_lock<std::mutex> lock(sync_->mu);
  sync_->abandoned = true;
  while (true) {
    const int64_t slice_end = std::min(deadline_ns, MonotonicNanos() + kStopRepeatNs);
    const bool done = sync_->cv.wait_for(
        lock, std::chrono::nanoseconds(std::max<int64_t>(0, slice_end - MonotonicNanos())),
        [this] { return sync_->stopped == sync_->started; });
    if (done) return absl::OkStatus();
    if (MonotonicNanos() >= deadline_ns) {
      return absl::DeadlineExceededError(
          absl::StrCat("ublk device ", info_.dev_id, ": ", sync_->started - sync_->stopped,
                       " queues still running after STOP_DEV (I/O stuck in the backend?)"));
    }
    // A queue that fetched after the previous STOP_DEV (it started late) is aborted by another.
    lock.unlock();
    control_->StopDevice(info_.dev_id, {.deadline_ns = deadline_ns}).IgnoreError();
    lock.lock();
  }
}

absl::Status UblkDevice::Teardown() {
  if (torn_down_) return teardown_status_;
  torn_down_ = true;
  absl::Status status;
  const bool had_device = added_;
  const int64_t deadline = MonotonicNanos() + options_.stop_timeout_ns;
  if (added_) {
    absl::Status s = control_->StopDevice(info_.dev_id, {.deadline_ns = deadline});
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound) status.Update(s);
  }
  if (sync_ != nullptr) {
    absl::Status s = StopQueues(deadline);
    if (!s.ok()) {
      // The kernel may still write into our buffers and deliver completions to the queues: keep
      // them (and the char device) alive for good rather than free memory in use.
      for (auto& q : queues_) KeepForever(q);
      queues_kept_ = true;
      char_fd_.release();
      queues_.clear();
      teardown_status_ = s;
      return s;
    }
  }
  // Every queue is stopped or will never start (abandoned): nothing maps /dev/ublkcN any more
  // once these are unmapped, even while a stuck reactor still holds a never-started queue.
  for (auto& q : queues_) q->Unmap();
  queues_.clear();
  char_fd_.reset();
  if (added_) {
    // DEL_DEV waits until nobody holds /dev/ublkcN (the last unmap may still be on its way).
    absl::Status s = control_->DeleteDevice(
        info_.dev_id, {.deadline_ns = MonotonicNanos() + options_.stop_timeout_ns});
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound) status.Update(s);
    added_ = false;
  }
  if (status.ok() && had_device) NLOG(INFO) << "ublk: " << block_path() << " stopped and deleted";
  teardown_status_ = status;
  return status;
}

}  // namespace nvmf_ublk::ublk
