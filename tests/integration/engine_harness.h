// Helpers for the engine's integration tests (DESIGN.md §7): the engine over loopback TCP against
// tools/nvmf-target running in the same process.
//
// - TestController: one io::Controller with a recording listener (state history, asynchronous
//   events), created, started, shut down and destroyed on the engine's control reactor.
// - IoLoad: asynchronous write-then-verify traffic on every I/O queue at once, re-issuing
//   failover-class results from the completion callback like a multipath head would, and counting
//   every submission and completion per request (exactly one completion per submission).
// - Small utilities: target and host configurations, data patterns, fd and thread counts.
#ifndef NVMF_UBLK_IO_TESTING_ENGINE_HARNESS_H_
#define NVMF_UBLK_IO_TESTING_ENGINE_HARNESS_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "io/controller.h"
#include "io/engine.h"
#include "io/io_request.h"
#include "tools/nvmf-target/target.h"

namespace nvmf_ublk::io::testing {

inline constexpr char kSubNqn[] = "nqn.2026-01.io.nvmf-ublk:engine";
inline constexpr char kHostNqn[] =
    "nqn.2014-08.org.nvmexpress:uuid:0e4a1c00-0000-4000-8000-000000000001";
inline constexpr int64_t kMs = 1'000'000;
inline constexpr int64_t kSec = 1'000'000'000;

// One port on 127.0.0.1 (ephemeral TCP port) and subsystem kSubNqn with one RAM namespace (NSID 1).
target::TargetConfig OneNamespaceTarget(uint64_t ns_bytes = 8 << 20, uint32_t block_size = 512);

// Host options for 127.0.0.1:`port` with test-sized timers: reconnect every second, 2 s connect
// timeout, 10 s I/O and admin timeouts.
ControllerOptions HostOptions(uint16_t port, const std::string& subnqn = kSubNqn);

// Deterministic pseudo-random bytes.
std::vector<uint8_t> Pattern(size_t bytes, uint64_t seed);

// Entries in /proc/self/fd and /proc/self/task.
size_t OpenFdCount();
size_t ThreadCount();

// What the target holds at [offset, offset + len) of namespace `nsid` of `nqn`.
std::vector<uint8_t> TargetBytes(const target::Target& target, uint64_t offset, size_t len,
                                 const std::string& nqn = kSubNqn, uint32_t nsid = 1);

// Calls `pred` until it is true or `timeout_ns` passed (polling every 10 ms); returns its last
// value.
bool WaitUntil(const std::function<bool()>& pred, int64_t timeout_ns);

// Records the completions of requests, indexed by IoRequest::user (0..n-1): how many times each
// completed (it must be exactly once per submission), the last result and when it arrived.
class Completions final : public IoCallback {
 public:
  explicit Completions(size_t n = 1) : calls_(n), results_(n), at_ns_(n) {}
  void OnIoDone(IoRequest* req, const IoResult& result) override;
  // Waits until every request completed at least once.
  bool WaitAll(int64_t timeout_ns);
  int calls(size_t k) const { return calls_[k].load(); }
  IoResult result(size_t k) const;
  int64_t completed_at_ns(size_t k) const;

 private:
  std::vector<std::atomic<int>> calls_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<IoResult> results_;
  std::vector<int64_t> at_ns_;
  size_t done_ = 0;
};

// SyncController whose Io() also fails the test when a request completes more than once.
class TestController final : public SyncController {
 public:
  static absl::StatusOr<std::unique_ptr<TestController>> Connect(Engine* engine,
                                                                 ControllerOptions options);
  IoResult Io(size_t queue, IoRequest* req);
  void Shutdown() { Disconnect(); }

 private:
  explicit TestController(Engine* engine) : SyncController(engine) {}
};

class IoLoad final : public IoCallback {
 public:
  struct Options {
    uint32_t slots_per_queue = 8;
    uint32_t small_blocks = 8;   // 4 KiB: in-capsule
    uint32_t large_blocks = 64;  // 32 KiB: R2T
    uint32_t block_size = 512;
    uint64_t first_lba = 0;
    uint32_t nsid = 1;
    uint32_t max_retries = 1000;  // per operation; beyond it the slot stops as failed
  };
  IoLoad(TestController* ctrl, Options options);
  ~IoLoad() override;

  void Start();
  void Stop();
  // Waits until every slot stopped (after Stop(), or by failing).
  bool WaitIdle(int64_t timeout_ns);
  // Waits until at least `n` reads were verified since Start().
  bool WaitVerified(uint64_t n, int64_t timeout_ns);

  uint64_t verified() const { return verified_.load(); }
  uint64_t verify_failures() const { return verify_failures_.load(); }
  uint64_t double_completions() const { return double_completions_.load(); }
  uint64_t reissued() const { return reissued_.load(); }
  uint64_t failed() const { return failed_.load(); }
  // Submissions minus completions over all slots (0 when nothing was lost).
  int64_t unaccounted() const;
  // How often each non-OK result was seen, e.g. {"err -103": 12, "status 0x302": 1}.
  std::map<std::string, uint64_t> results() const;
  // Checks that the target holds each slot's last written pattern.
  ::testing::AssertionResult TargetHoldsLastWrites(const target::Target& target) const;

 private:
  struct Slot {
    size_t queue = 0;
    uint64_t lba = 0;
    uint32_t blocks = 0;
    uint64_t generation = 0;
    bool writing = true;
    uint32_t retries = 0;
    IoRequest req;
    std::vector<uint8_t> wbuf, rbuf;
    std::atomic<bool> in_flight{false};
    std::atomic<uint64_t> submitted{0}, completed{0};
  };
  void OnIoDone(IoRequest* req, const IoResult& result) override;
  void StartWrite(Slot& s);
  void StartRead(Slot& s);
  void SubmitHere(Slot& s);  // on the slot's reactor
  void Idle(const std::string& why = {});
  void Record(const std::string& what);

  TestController* ctrl_;
  Options options_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> verified_{0}, verify_failures_{0}, double_completions_{0}, reissued_{0},
      failed_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t active_ = 0;
  std::map<std::string, uint64_t> results_;
};

}  // namespace nvmf_ublk::io::testing

#endif  // NVMF_UBLK_IO_TESTING_ENGINE_HARNESS_H_
