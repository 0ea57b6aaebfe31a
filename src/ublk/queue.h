// One ublk hardware queue: the per-tag FETCH / COMMIT_AND_FETCH loop on a Reactor.
//
// Queue q of a device lives on reactor q (DESIGN.md §1). It uses the reactor's own io_uring (normal
// 64-byte SQEs: the 16-byte ublksrv_io_cmd fits the SQE's command area), so the ublk commands and
// the NVMe/TCP traffic of that queue go to the kernel in the same io_uring_enter.
//
// Data moves in copy mode: each tag owns a page-aligned buffer of max_io_bytes given to the kernel
// in FETCH_REQ and COMMIT_AND_FETCH_REQ; the driver copies write data into it before delivering the
// request, and copies read data out of it when the result is committed.
//
// Per tag:   kIdle --Start--> kFetching --CQE OK--> kInBackend --Complete--> kFetching ...
//                                  \--CQE ABORT (device stopped) / error--> kDead
// The queue is stopped when every tag is dead: it unregisters from the reactor, tells the backend
// (QueueStopped) and runs the on_stopped callback. Hold() (the daemon's hand-over to its successor)
// keeps every request that arrives from then on away from the backend (tag kHeld): the process
// exits with it uncommitted and the kernel re-issues it to the next server (USER_RECOVERY_REISSUE).
// STOP_DEV makes the kernel abort every fetched tag once the I/O in flight has been committed; a
// crash of the process ends the queue implicitly.
#ifndef NVMF_UBLK_UBLK_QUEUE_H_
#define NVMF_UBLK_UBLK_QUEUE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "io/reactor.h"
#include "ublk/backend.h"
#include "ublk/uapi.h"

namespace nvmf_ublk::ublk {

struct QueueConfig {
  uint32_t dev_id = 0;
  uint16_t q_id = 0;
  uint16_t depth = 0;
  uint32_t max_io_bytes = 0;   // tag buffer size (the device's max_io_buf_bytes)
  int char_fd = -1;            // /dev/ublkc<dev_id>, shared by the device's queues, not owned
  bool ioctl_encoding = true;  // UBLK_U_IO_* (the device has UBLK_F_CMD_IOCTL_ENCODE) or legacy
};

// Turns a request descriptor into `io` (op, flags, offset, length, buffer). Returns 0, or the
// negative errno to commit without asking the backend: -EOPNOTSUPP for operations we do not serve
// (zoned, WRITE_SAME), -EIO for a descriptor that cannot be right.
int DecodeIoDesc(const uapi::ublksrv_io_desc& desc, uint32_t max_io_bytes, void* tag_buffer,
                 BlockIo* io);

// The one place where a backend's result becomes the result committed to the kernel: negative
// errno passes through (out-of-range values become -EIO); for reads and writes, 0 becomes -EIO
// (the driver would fail a read and endlessly requeue a write otherwise) and more than len_bytes is
// clamped; other operations commit 0 on success.
int ToUblkResult(const BlockIo& io, int result);

class UblkQueue final : private io::CompletionHandler, private BlockIoSink {
 public:
  enum class State { kIdle, kRunning, kStopped };
  static const char* ToString(State s);

  UblkQueue(io::Reactor* reactor, const QueueConfig& config, BlockBackend* backend);
  ~UblkQueue() override;
  UblkQueue(const UblkQueue&) = delete;
  UblkQueue& operator=(const UblkQueue&) = delete;

  // Any thread of the server process, before Start: maps the queue's descriptor array (read-only)
  // and reserves the tag buffers.
  absl::Status Init();
  // Reactor thread: registers with the reactor and queues FETCH_REQ for every tag (sent at the end
  // of this loop turn). `on_stopped` runs on the reactor thread once the queue has stopped.
  void Start(std::function<void()> on_stopped);
  // Any thread, once the queue is not running (never started, or stopped): releases the descriptor
  // mapping (which keeps /dev/ublkcN busy, so DEL_DEV would wait) and the tag buffers. Idempotent.
  void Unmap();
  // Reactor thread: from now on requests are held, not given to the backend (see above). Requests
  // already in the backend complete and are committed as usual.
  void Hold();

  // Thread-safe observers.
  State state() const { return state_.load(std::memory_order_acquire); }
  // A tag ended with an error other than the kernel's abort (a rejected FETCH, a bad commit).
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  uint64_t ios_completed() const { return ios_completed_.load(std::memory_order_relaxed); }
  // Requests the backend has and has not completed yet.
  uint32_t in_backend() const { return in_backend_.load(std::memory_order_acquire); }
  // Requests kept from the backend since Hold().
  uint32_t held() const { return held_.load(std::memory_order_acquire); }

  uint16_t q_id() const { return config_.q_id; }
  io::Reactor* reactor() const { return reactor_; }

 private:
  enum class TagState : uint8_t { kIdle, kFetching, kInBackend, kHeld, kDead };
  enum : uint8_t { kOpFetch = 1, kOpCommit = 2 };
  struct Tag {
    TagState state = TagState::kIdle;
    bool submitted = false;  // the backend has io (counted in in_backend_)
    BlockIo io;
  };

  void OnCompletion(uint8_t op, uint16_t tag, int32_t res, uint32_t flags) override;
  // BlockIo::Complete lands here.
  void OnBlockIoComplete(BlockIo* io, int result) override;
  void QueueCommand(uint8_t op, uint16_t tag, int32_t result);
  void TagDead(uint16_t tag);
  void SetState(State s);
  void* TagBuffer(uint16_t tag) const {
    return static_cast<char*>(buffers_) + size_t{tag} * config_.max_io_bytes;
  }

  io::Reactor* reactor_;
  QueueConfig config_;
  BlockBackend* backend_;
  io::HandlerId handler_;
  std::function<void()> on_stopped_;

  const uapi::ublksrv_io_desc* descs_ = nullptr;  // mmap of /dev/ublkcN, read-only
  size_t descs_len_ = 0;
  void* buffers_ = nullptr;  // depth * max_io_bytes, anonymous mmap
  size_t buffers_len_ = 0;
  std::vector<Tag> tags_;
  uint32_t live_tags_ = 0;  // tags not kDead

  std::atomic<State> state_{State::kIdle};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> ios_completed_{0};
  bool holding_ = false;                 // reactor thread only
  std::atomic<uint32_t> in_backend_{0};  // one writer (the reactor thread)
  std::atomic<uint32_t> held_{0};        // one writer (the reactor thread)
};

}  // namespace nvmf_ublk::ublk

#endif  // NVMF_UBLK_UBLK_QUEUE_H_
