#include "ublk/testing/ram_backend.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace nvmf_ublk::ublk::testing {

absl::StatusOr<std::unique_ptr<RamBackend>> RamBackend::Create(Options options) {
  if (options.size_bytes == 0) return absl::InvalidArgumentError("RamBackend: size 0");
  std::unique_ptr<RamBackend> b(new RamBackend(std::move(options)));
  const uint64_t size = b->options_.size_bytes;
  void* p;
  if (b->options_.backing_file.empty()) {
    p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
             0);
  } else {
    const std::string& path = b->options_.backing_file;
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoToStatus(errno, "open " + path);
    struct stat st;
    if (fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, "fstat " + path);
    if (static_cast<uint64_t>(st.st_size) < size && ftruncate(fd.get(), size) != 0) {
      return ErrnoToStatus(errno, "ftruncate " + path);
    }
    p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  }
  if (p == MAP_FAILED) return ErrnoToStatus(errno, "RamBackend: mmap");
  b->data_ = static_cast<uint8_t*>(p);
  return b;
}

RamBackend::~RamBackend() {
  if (data_ != nullptr) munmap(data_, options_.size_bytes);
}

void RamBackend::QueueStarted(uint16_t) { counters_.queue_starts.fetch_add(1); }
void RamBackend::QueueStopped(uint16_t) { counters_.queue_stops.fetch_add(1); }

void RamBackend::InjectError(uint64_t offset, uint64_t len, int error) {
  fault_offset_.store(offset);
  fault_len_.store(len);
  fault_error_.store(error);
}

int RamBackend::Execute(const BlockIo& io) {
  const int fault = fault_error_.load();
  if (fault != 0 && io.op != BlockIo::kFlush) {
    const uint64_t fo = fault_offset_.load(), fl = fault_len_.load();
    if (io.offset_bytes < fo + fl && fo < io.offset_bytes + io.len_bytes) {
      counters_.errors.fetch_add(1);
      return fault;
    }
  }
  if (io.offset_bytes > options_.size_bytes ||
      io.len_bytes > options_.size_bytes - io.offset_bytes) {
    counters_.errors.fetch_add(1);
    return -EIO;
  }
  uint8_t* at = data_ + io.offset_bytes;
  switch (io.op) {
    case BlockIo::kRead:
      std::memcpy(io.buffer, at, io.len_bytes);
      counters_.reads.fetch_add(1);
      counters_.bytes_read.fetch_add(io.len_bytes);
      return static_cast<int>(io.len_bytes);
    case BlockIo::kWrite:
      std::memcpy(at, io.buffer, io.len_bytes);
      counters_.writes.fetch_add(1);
      counters_.bytes_written.fetch_add(io.len_bytes);
      if (io.fua) counters_.fua_writes.fetch_add(1);
      return static_cast<int>(io.len_bytes);
    case BlockIo::kFlush:
      counters_.flushes.fetch_add(1);
      return 0;
    case BlockIo::kDiscard:
      std::memset(at, 0, io.len_bytes);
      counters_.discards.fetch_add(1);
      return 0;
    case BlockIo::kWriteZeroes:
      std::memset(at, 0, io.len_bytes);
      counters_.write_zeroes.fetch_add(1);
      if (io.nounmap) counters_.nounmap.fetch_add(1);
      return 0;
  }
  return -EOPNOTSUPP;
}

void RamBackend::Submit(BlockIo* io) {
  const int result = Execute(*io);
  if (!options_.async) {
    io->Complete(result);
    return;
  }
  io::Reactor* reactor = options_.reactors.at(io->queue);
  if (options_.latency_ns > 0) {
    reactor->AddTimerAfter(options_.latency_ns, [io, result] { io->Complete(result); });
  } else {
    reactor->Post([io, result] { io->Complete(result); });
  }
}

std::string RamBackend::CountersLine() const {
  const Counters& c = counters_;
  return absl::StrCat(
      "reads=", c.reads.load(), " writes=", c.writes.load(), " fua=", c.fua_writes.load(),
      " flushes=", c.flushes.load(), " discards=", c.discards.load(),
      " write_zeroes=", c.write_zeroes.load(), " nounmap=", c.nounmap.load(),
      " errors=", c.errors.load(), " bytes_read=", c.bytes_read.load(),
      " bytes_written=", c.bytes_written.load(), " queue_starts=", c.queue_starts.load(),
      " queue_stops=", c.queue_stops.load());
}

}  // namespace nvmf_ublk::ublk::testing
