#include "ublk/queue.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"

namespace nvmf_ublk::ublk {

// The ublk I/O command travels in the SQE's trailing 16 bytes (addr3 + pad2 in a 64-byte SQE).
static_assert(offsetof(io_uring_sqe, addr3) == 48);
static_assert(sizeof(io_uring_sqe) - offsetof(io_uring_sqe, addr3) == sizeof(uapi::ublksrv_io_cmd));

int DecodeIoDesc(const uapi::ublksrv_io_desc& desc, uint32_t max_io_bytes, void* tag_buffer,
                 BlockIo* io) {
  const uint32_t flags = uapi::ublksrv_get_io_flags(desc);
  const uint64_t len = uint64_t{desc.nr_sectors} << 9;
  io->offset_bytes = desc.start_sector << 9;
  io->len_bytes = static_cast<uint32_t>(len);
  io->buffer = nullptr;
  io->fua = false;
  io->nounmap = false;
  switch (uapi::ublksrv_get_op(desc)) {
    case uapi::UBLK_IO_OP_READ:
      io->op = BlockIo::kRead;
      break;
    case uapi::UBLK_IO_OP_WRITE:
      io->op = BlockIo::kWrite;
      io->fua = (flags & uapi::UBLK_IO_F_FUA) != 0;
      break;
    case uapi::UBLK_IO_OP_FLUSH:
      io->op = BlockIo::kFlush;
      io->offset_bytes = 0;
      io->len_bytes = 0;
      return 0;
    case uapi::UBLK_IO_OP_DISCARD:
      io->op = BlockIo::kDiscard;
      break;
    case uapi::UBLK_IO_OP_WRITE_ZEROES:
      io->op = BlockIo::kWriteZeroes;
      io->nounmap = (flags & uapi::UBLK_IO_F_NOUNMAP) != 0;
      break;
    default:  // zoned operations, WRITE_SAME: never enabled by our parameters
      return -EOPNOTSUPP;
  }
  if (len == 0 || len > UINT32_MAX) return -EIO;
  if (io->op == BlockIo::kRead || io->op == BlockIo::kWrite) {
    if (len > max_io_bytes) return -EIO;
    io->buffer = tag_buffer;
  }
  return 0;
}

int ToUblkResult(const BlockIo& io, int result) {
  if (result < 0) return result >= -4095 ? result : -EIO;
  if (io.op != BlockIo::kRead && io.op != BlockIo::kWrite) return 0;
  if (result == 0) return -EIO;
  return result > static_cast<int64_t>(io.len_bytes) ? static_cast<int>(io.len_bytes) : result;
}

const char* UblkQueue::ToString(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kRunning:
      return "running";
    case State::kStopped:
      return "stopped";
  }
  return "?";
}

UblkQueue::UblkQueue(io::Reactor* reactor, const QueueConfig& config, BlockBackend* backend)
    : reactor_(reactor), config_(config), backend_(backend), tags_(config.depth) {
  for (uint16_t t = 0; t < config_.depth; ++t) {
    tags_[t].io.set_sink(this);
    tags_[t].io.queue = config_.q_id;
    tags_[t].io.tag = t;
  }
}

UblkQueue::~UblkQueue() {
  // Running means the reactor may still deliver our CQEs and the kernel may write our buffers.
  NCHECK(state() != State::kRunning) << "ublk queue " << config_.q_id << " destroyed while running";
  Unmap();
}

void UblkQueue::Unmap() {
  NCHECK(state() != State::kRunning) << "ublk queue " << config_.q_id << " unmapped while running";
  if (descs_ != nullptr) munmap(const_cast<uapi::ublksrv_io_desc*>(descs_), descs_len_);
  if (buffers_ != nullptr) munmap(buffers_, buffers_len_);
  descs_ = nullptr;
  buffers_ = nullptr;
}

absl::Status UblkQueue::Init() {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (config_.depth == 0 || config_.depth > uapi::UBLK_MAX_QUEUE_DEPTH) {
    return absl::InvalidArgumentError(absl::StrCat("ublk queue depth ", config_.depth));
  }
  if (config_.max_io_bytes == 0 || config_.max_io_bytes % page != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ublk tag buffer size ", config_.max_io_bytes, " is not page-aligned"));
  }
  descs_len_ = uapi::UblkQueueCmdBufSize(config_.depth, page);
  const off_t offset = static_cast<off_t>(uapi::UBLKSRV_CMD_BUF_OFFSET +
                                          config_.q_id * uapi::UblkMaxCmdBufSize(page));
  void* d =
      mmap(nullptr, descs_len_, PROT_READ, MAP_SHARED | MAP_POPULATE, config_.char_fd, offset);
  if (d == MAP_FAILED) {
    return ErrnoToStatus(errno, absl::StrCat("mmap ublk descriptors of /dev/ublkc", config_.dev_id,
                                             " queue ", config_.q_id));
  }
  descs_ = static_cast<const uapi::ublksrv_io_desc*>(d);
  // Reserved, not committed: pages are touched only by the I/O that needs them.
  buffers_len_ = size_t{config_.depth} * config_.max_io_bytes;
  void* b = mmap(nullptr, buffers_len_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (b == MAP_FAILED) {
    return ErrnoToStatus(errno, absl::StrCat("mmap ", buffers_len_, " bytes of ublk tag buffers"));
  }
  buffers_ = b;
  return absl::OkStatus();
}

void UblkQueue::SetState(State s) {
  const State old = state_.exchange(s, std::memory_order_acq_rel);
  NLOG(DEBUG) << "ublk " << config_.dev_id << " queue " << config_.q_id << ": " << ToString(old)
              << " -> " << ToString(s);
}

void UblkQueue::Start(std::function<void()> on_stopped) {
  NCHECK(reactor_->InReactorThread());
  NCHECK(state() == State::kIdle && descs_ != nullptr);
  on_stopped_ = std::move(on_stopped);
  handler_ = reactor_->Register(this);
  SetState(State::kRunning);
  backend_->QueueStarted(config_.q_id);
  live_tags_ = config_.depth;
  for (uint16_t t = 0; t < config_.depth; ++t) {
    tags_[t].state = TagState::kFetching;
    QueueCommand(kOpFetch, t, 0);
  }
}

void UblkQueue::QueueCommand(uint8_t op, uint16_t tag, int32_t result) {
  io_uring_sqe* sqe = reactor_->GetSqe(handler_, op, tag);  // sets user_data
  io_uring_prep_rw(IORING_OP_URING_CMD, sqe, config_.char_fd, nullptr, 0, 0);
  if (op == kOpFetch) {
    sqe->cmd_op = config_.ioctl_encoding ? uapi::UBLK_U_IO_FETCH_REQ : uapi::UBLK_IO_FETCH_REQ;
  } else {
    sqe->cmd_op = config_.ioctl_encoding ? uapi::UBLK_U_IO_COMMIT_AND_FETCH_REQ
                                         : uapi::UBLK_IO_COMMIT_AND_FETCH_REQ;
  }
  uapi::ublksrv_io_cmd cmd;
  cmd.q_id = config_.q_id;
  cmd.tag = tag;
  cmd.result = result;
  cmd.addr = reinterpret_cast<uintptr_t>(TagBuffer(tag));
  std::memcpy(reinterpret_cast<char*>(sqe) + offsetof(io_uring_sqe, addr3), &cmd, sizeof(cmd));
}

void UblkQueue::OnCompletion(uint8_t op, uint16_t tag, int32_t res, uint32_t /*flags*/) {
  if (tag >= tags_.size() || tags_[tag].state != TagState::kFetching) {
    NLOG(ERROR) << "ublk " << config_.dev_id << " queue " << config_.q_id
                << ": unexpected completion for tag " << tag;
    return;
  }
  Tag& t = tags_[tag];
  if (res != uapi::UBLK_IO_RES_OK) {
    if (res != uapi::UBLK_IO_RES_ABORT && !failed_.load(std::memory_order_relaxed)) {
      // NEED_GET_DATA (never requested) or the kernel refusing our FETCH/COMMIT: log the first.
      NLOG(ERROR) << "ublk " << config_.dev_id << " queue " << config_.q_id << " tag " << tag
                  << ": " << (op == kOpFetch ? "FETCH_REQ" : "COMMIT_AND_FETCH_REQ")
                  << " failed: " << (res < 0 ? strerror(-res) : "unexpected result") << " (" << res
                  << ")";
      failed_.store(true, std::memory_order_release);
    }
    TagDead(tag);
    return;
  }
  // A request: the kernel wrote its descriptor before completing the command.
  uapi::ublksrv_io_desc desc;
  std::memcpy(&desc, &descs_[tag], sizeof(desc));
  if (holding_) {
    t.state = TagState::kHeld;
    held_.store(held_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    return;
  }
  t.state = TagState::kInBackend;
  const int rc = DecodeIoDesc(desc, config_.max_io_bytes, TagBuffer(tag), &t.io);
  if (rc != 0) {
    OnBlockIoComplete(&t.io, rc);
    return;
  }
  t.submitted = true;
  in_backend_.store(in_backend_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  backend_->Submit(&t.io);
}

void UblkQueue::Hold() {
  NCHECK(reactor_->InReactorThread());
  holding_ = true;
}

void UblkQueue::OnBlockIoComplete(BlockIo* io, int result) {
  NCHECK(reactor_->InReactorThread()) << "BlockIo::Complete off the queue's reactor thread";
  Tag& t = tags_[io->tag];
  NCHECK(t.state == TagState::kInBackend)
      << "BlockIo completed twice (queue " << config_.q_id << " tag " << io->tag << ")";
  t.state = TagState::kFetching;
  // One writer (this thread): no read-modify-write needed.
  ios_completed_.store(ios_completed_.load(std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
  // Descriptors the queue rejected itself (rc != 0 above) never counted as in the backend.
  if (t.submitted) {
    t.submitted = false;
    in_backend_.store(in_backend_.load(std::memory_order_relaxed) - 1, std::memory_order_release);
  }
  QueueCommand(kOpCommit, io->tag, ToUblkResult(*io, result));
}

void UblkQueue::TagDead(uint16_t tag) {
  tags_[tag].state = TagState::kDead;
  if (--live_tags_ > 0) return;
  reactor_->Unregister(handler_);
  SetState(State::kStopped);
  backend_->QueueStopped(config_.q_id);
  if (on_stopped_) {
    auto fn = std::move(on_stopped_);
    fn();  // the device may release this queue now: touch nothing of it afterwards
  }
}

}  // namespace nvmf_ublk::ublk
