// Monotonic time source, injectable so timers can be tested with a fake clock.
#ifndef NVMF_UBLK_BASE_CLOCK_H_
#define NVMF_UBLK_BASE_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace nvmf_ublk {

// Nanoseconds on CLOCK_MONOTONIC.
inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowNanos() const = 0;
  // The process-wide real monotonic clock.
  static const Clock& Real();
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start = 1'000'000'000) : now_(start) {}
  int64_t NowNanos() const override { return now_; }
  void Advance(int64_t nanos) { now_ += nanos; }

 private:
  int64_t now_;
};

}  // namespace nvmf_ublk

#endif  // NVMF_UBLK_BASE_CLOCK_H_
