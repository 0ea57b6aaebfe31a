// Log-linear latency histogram (HdrHistogram-style): 16 linear sub-buckets per power of two of
// nanoseconds, so every recorded value is within ~6% of its bucket; constant memory, no allocation
// when recording. For benchmark reports only.
#ifndef NVMF_UBLK_TOOLS_BENCH_LATENCY_HISTOGRAM_H_
#define NVMF_UBLK_TOOLS_BENCH_LATENCY_HISTOGRAM_H_

#include <array>
#include <cmath>
#include <cstdint>

namespace nvmf_ublk::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 4;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = 64 * kSub;

  void Record(int64_t ns) {
    if (ns < 0) ns = 0;
    ++counts_[Index(static_cast<uint64_t>(ns))];
    ++total_;
    sum_ += static_cast<uint64_t>(ns);
    if (static_cast<uint64_t>(ns) > max_) max_ = static_cast<uint64_t>(ns);
  }
  void Merge(const LatencyHistogram& o) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    sum_ += o.sum_;
    if (o.max_ > max_) max_ = o.max_;
  }
  uint64_t count() const { return total_; }
  double MeanNs() const { return total_ ? static_cast<double>(sum_) / total_ : 0; }
  uint64_t MaxNs() const { return max_; }
  // Upper bound of the bucket holding the p-th percentile (0 < p <= 100).
  uint64_t PercentileNs(double p) const {
    if (total_ == 0) return 0;
    const uint64_t rank =
        static_cast<uint64_t>(std::llround(p / 100.0 * static_cast<double>(total_)));
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank && counts_[i] > 0) return UpperBound(i) < max_ ? UpperBound(i) : max_;
    }
    return max_;
  }

  static int Index(uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    const int msb = 63 - __builtin_clzll(v);  // >= kSubBits
    const int shift = msb - kSubBits;
    const int sub = static_cast<int>((v >> shift) & (kSub - 1));
    return (shift + 1) * kSub + sub;
  }
  static uint64_t UpperBound(int index) {
    if (index < kSub) return static_cast<uint64_t>(index);
    const int shift = index / kSub - 1;
    const uint64_t sub = static_cast<uint64_t>(index % kSub);
    return (((uint64_t{kSub} | sub) + 1) << shift) - 1;
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace nvmf_ublk::bench

#endif  // NVMF_UBLK_TOOLS_BENCH_LATENCY_HISTOGRAM_H_
