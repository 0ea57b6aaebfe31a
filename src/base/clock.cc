#include "base/clock.h"

namespace nvmf_ublk {
namespace {
class RealClock final : public Clock {
 public:
  int64_t NowNanos() const override { return MonotonicNanos(); }
};
}  // namespace

const Clock& Clock::Real() {
  static const RealClock clock;
  return clock;
}

}  // namespace nvmf_ublk
