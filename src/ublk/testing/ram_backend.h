// A BlockBackend over memory, for tests and the ublk_ramdisk tool: anonymous memory, or a file
// mapped shared (put it under /dev/shm and the data outlives the process, which a recovery test
// needs). Counts every operation so tests can see that flushes, FUA, discards and write-zeroes
// reach the backend.
#ifndef NVMF_UBLK_UBLK_TESTING_RAM_BACKEND_H_
#define NVMF_UBLK_UBLK_TESTING_RAM_BACKEND_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "io/reactor.h"
#include "ublk/backend.h"

namespace nvmf_ublk::ublk::testing {

class RamBackend final : public BlockBackend {
 public:
  struct Options {
    uint64_t size_bytes = 0;
    // Empty: anonymous memory. Otherwise a file (created, and extended to size_bytes if shorter)
    // mapped MAP_SHARED.
    std::string backing_file;
    // Complete every I/O in a later loop turn of the queue's reactor (reactors[queue]) instead of
    // inline from Submit, like a network backend.
    bool async = false;
    // With async: complete this long after Submit (a reactor timer), so that I/O sits in the
    // backend (a crash test then has requests in flight).
    int64_t latency_ns = 0;
    std::vector<io::Reactor*> reactors;
  };
  struct Counters {
    std::atomic<uint64_t> reads{0}, writes{0}, fua_writes{0}, flushes{0}, discards{0},
        write_zeroes{0}, nounmap{0}, errors{0}, bytes_read{0}, bytes_written{0};
    std::atomic<uint64_t> queue_starts{0}, queue_stops{0};
  };

  static absl::StatusOr<std::unique_ptr<RamBackend>> Create(Options options);
  ~RamBackend() override;

  void QueueStarted(uint16_t queue) override;
  void Submit(BlockIo* io) override;
  void QueueStopped(uint16_t queue) override;

  // I/O touching [offset, offset + len) fails with `error` (negative errno); 0 clears.
  void InjectError(uint64_t offset, uint64_t len, int error);

  const Counters& counters() const { return counters_; }
  uint8_t* data() { return data_; }
  uint64_t size() const { return options_.size_bytes; }
  // "reads=1 writes=2 fua=0 flushes=3 discards=4 write_zeroes=5 nounmap=0 errors=0 ..."
  std::string CountersLine() const;

 private:
  explicit RamBackend(Options options) : options_(std::move(options)) {}
  int Execute(const BlockIo& io);

  Options options_;
  uint8_t* data_ = nullptr;
  Counters counters_;
  std::atomic<uint64_t> fault_offset_{0}, fault_len_{0};
  std::atomic<int> fault_error_{0};
};

}  // namespace nvmf_ublk::ublk::testing

#endif  // NVMF_UBLK_UBLK_TESTING_RAM_BACKEND_H_
