// The interface between a ublk queue and whatever serves its I/O (the NVMe multipath layer in the
// product, a RAM disk in tests).
//
// Threading contract (DESIGN.md §1): ublk hardware queue q of every device runs on reactor q. The
// queue calls BlockBackend::Submit on that reactor's thread, and the backend completes each I/O
// with BlockIo::Complete on the same thread: inline from Submit or in a later loop turn (after its
// NVMe/TCP exchange on the same io_uring). No locks, no cross-thread hand-off.
#ifndef NVMF_UBLK_UBLK_BACKEND_H_
#define NVMF_UBLK_UBLK_BACKEND_H_

#include <cstdint>

namespace nvmf_ublk::ublk {

struct BlockIo;

// Where a BlockIo's completion goes: its UblkQueue in production (which commits the result to the
// kernel); a recorder in a backend's own tests (BlockIo::set_sink).
class BlockIoSink {
 public:
  virtual ~BlockIoSink() = default;
  virtual void OnBlockIoComplete(BlockIo* io, int result) = 0;
};

// One block request, owned by its queue (one per tag, reused). The backend may use it from Submit
// until it calls Complete; the buffer likewise.
struct BlockIo {
  enum Op : uint8_t { kRead, kWrite, kFlush, kDiscard, kWriteZeroes };

  Op op = kRead;
  bool fua = false;      // kWrite: force unit access (only sent when the device has ATTR_FUA)
  bool nounmap = false;  // kWriteZeroes: the range must stay allocated (no deallocate)
  uint16_t queue = 0;
  uint16_t tag = 0;
  uint64_t offset_bytes = 0;  // always a multiple of the logical block size
  uint32_t len_bytes = 0;     // 0 for kFlush
  // kRead: fill len_bytes here; kWrite: the data. Page-aligned, max_io_bytes long, owned by the
  // queue; null for the other ops.
  void* buffer = nullptr;
  // Free for the backend (e.g. its per-tag command state): the queue never touches it, so a value
  // set once stays with the tag across requests.
  void* backend_data = nullptr;

  // Ends the I/O. `result`: >= 0 on success (the bytes transferred; for kRead/kWrite anything
  // other than len_bytes is a short transfer, 0 is an error; for the other ops any value >= 0 is
  // success), or a negative errno (-EIO, -ENOSPC, -EOPNOTSUPP, ...). Call exactly once, on the
  // queue's reactor thread; `this` must not be used afterwards.
  void Complete(int result);

  // Set by the queue that owns this BlockIo; tests of a backend set their own.
  void set_sink(BlockIoSink* sink) { sink_ = sink; }

 private:
  BlockIoSink* sink_ = nullptr;
};

const char* ToString(BlockIo::Op op);

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;

  // Queue `queue` starts serving (reactor thread of that queue), before its first Submit. Called
  // again after a recovery, with a fresh set of BlockIo objects.
  virtual void QueueStarted(uint16_t queue) { (void)queue; }
  // Takes one I/O (see BlockIo::Complete). Reactor thread of io->queue.
  virtual void Submit(BlockIo* io) = 0;
  // Queue `queue` has stopped for good: every tag aborted by the kernel, no BlockIo of this queue
  // is with the backend any more (reactor thread of that queue).
  virtual void QueueStopped(uint16_t queue) { (void)queue; }
};

}  // namespace nvmf_ublk::ublk

#endif  // NVMF_UBLK_UBLK_BACKEND_H_
