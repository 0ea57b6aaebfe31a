// Multipath against tools/nvmf-target with several listeners (DESIGN.md §5, §7): one namespace
// head over a ControllerPath per port, driven by block I/O (write, then read back and verify) on
// every ublk queue's reactor, as a device would. ANA states change at runtime through the target
// (ANA change AEN -> ANA log -> path choice), connections are cut mid-I/O, every path goes down
// and comes back, and paths are removed and added while I/O runs; no request fails, none
// completes twice, and the target holds the data last written.
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "base/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "io/engine.h"
#include "multipath/namespace_head.h"
#include "multipath/path.h"
#include "tests/integration/engine_harness.h"

namespace nvmf_ublk::multipath {
namespace {

using io::testing::kMs;
using io::testing::kSec;
using ::nvmf_ublk::testing::IsOk;

constexpr uint32_t kBlock = 512;
constexpr uint32_t kIoBytes = 8192;  // R2T on writes: a real transfer per command
constexpr uint16_t kQueues = 2;
constexpr uint16_t kSlots = 8;  // per queue

// Block I/O on every queue: each slot writes its own region with a new pattern, reads it back
// and compares, forever until stopped. Runs on the queues' reactors, like ublk queues do.
class BlockLoad final : public ublk::BlockIoSink {
 public:
  BlockLoad(NamespaceHead* head, std::vector<io::Reactor*> reactors)
      : head_(head), reactors_(std::move(reactors)) {
    for (uint16_t q = 0; q < kQueues; ++q) {
      for (uint16_t t = 0; t < kSlots; ++t) {
        auto s = std::make_unique<Slot>();
        s->io.queue = q;
        s->io.tag = t;
        s->io.set_sink(this);
        s->offset = (uint64_t{q} * kSlots + t) * kIoBytes;
        s->wbuf.resize(kIoBytes);
        s->rbuf.resize(kIoBytes);
        slots_.push_back(std::move(s));
      }
    }
  }
  void Start() {
    for (auto& s : slots_) {
      Slot* raw = s.get();
      active_.fetch_add(1);
      reactors_[raw->io.queue]->Post([this, raw] { Write(raw); });
    }
  }
  void Stop() { stop_.store(true); }
  bool WaitIdle(int64_t timeout_ns) {
    return io::testing::WaitUntil([&] { return active_.load() == 0; }, timeout_ns);
  }
  bool WaitVerified(uint64_t more, int64_t timeout_ns) {
    const uint64_t target = verified_.load() + more;
    return io::testing::WaitUntil([&] { return verified_.load() >= target; }, timeout_ns);
  }
  uint64_t verified() const { return verified_.load(); }
  uint64_t errors() const { return errors_.load(); }
  uint64_t mismatches() const { return mismatches_.load(); }
  uint64_t double_completions() const { return doubles_.load(); }
  std::string first_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }
  // Each slot's last completed write is what the target holds.
  ::testing::AssertionResult TargetHoldsLastWrites(const target::Target& target) const {
    for (const auto& s : slots_) {
      if (s->written != s->wbuf.size()) continue;
      if (io::testing::TargetBytes(target, s->offset, kIoBytes) != s->wbuf) {
        return ::testing::AssertionFailure() << "slot at " << s->offset << " differs";
      }
    }
    return ::testing::AssertionSuccess();
  }

 private:
  struct Slot {
    ublk::BlockIo io;
    uint64_t offset = 0;
    uint64_t gen = 0;
    bool reading = false;
    bool busy = false;
    size_t written = 0;
    std::vector<uint8_t> wbuf, rbuf;
  };
  void Write(Slot* s) {
    if (stop_.load()) {
      active_.fetch_sub(1);
      return;
    }
    s->wbuf = io::testing::Pattern(kIoBytes, (s->offset << 20) + ++s->gen);
    s->io.op = ublk::BlockIo::kWrite;
    s->io.offset_bytes = s->offset;
    s->io.len_bytes = kIoBytes;
    s->io.buffer = s->wbuf.data();
    s->reading = false;
    s->busy = true;
    head_->Submit(&s->io);
  }
  void Read(Slot* s) {
    std::memset(s->rbuf.data(), 0, kIoBytes);
    s->io.op = ublk::BlockIo::kRead;
    s->io.buffer = s->rbuf.data();
    s->reading = true;
    s->busy = true;
    head_->Submit(&s->io);
  }
  void OnBlockIoComplete(ublk::BlockIo* io, int result) override {
    Slot* s = slots_[io->queue * kSlots + io->tag].get();
    if (!s->busy) {
      doubles_.fetch_add(1);
      return;
    }
    s->busy = false;
    if (result != static_cast<int>(kIoBytes)) {
      errors_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      if (first_error_.empty()) {
        first_error_ = std::string(s->reading ? "read" : "write") + " at " +
                       std::to_string(s->offset) + ": " + std::to_string(result);
      }
    } else if (!s->reading) {
      s->written = kIoBytes;
      Read(s);
      return;
    } else if (s->rbuf != s->wbuf) {
      mismatches_.fetch_add(1);
    } else {
      verified_.fetch_add(1);
    }
    Write(s);
  }

  NamespaceHead* head_;
  std::vector<io::Reactor*> reactors_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<bool> stop_{false};
  std::atomic<int> active_{0};
  std::atomic<uint64_t> verified_{0}, errors_{0}, mismatches_{0}, doubles_{0};
  mutable std::mutex mu_;
  std::string first_error_;
};

class MultipathTest : public ::testing::Test {
 protected:
  // Starts the target (three listeners of one subsystem, `tweak`ed) and connects paths 0 and 1.
  void Begin(const std::function<void(target::TargetConfig&)>& tweak = {}) {
    target::TargetConfig c = io::testing::OneNamespaceTarget(8 << 20, kBlock);
    c.ports.resize(3);
    if (tweak) tweak(c);
    target_ = std::make_unique<target::Target>(c);
    auto ports = target_->Start();
    ASSERT_THAT(ports, IsOk());
    ports_ = *ports;
    auto engine = io::Engine::Create(kQueues);
    ASSERT_THAT(engine, IsOk());
    engine_ = std::move(*engine);
    for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(AddController(i));
  }
  void TearDown() override {
    paths_.clear();
    for (auto& c : ctrls_) c->Shutdown();
    ctrls_.clear();
    engine_.reset();
  }
  void AddController(size_t port) {
    io::ControllerOptions o = io::testing::HostOptions(ports_[port]);
    o.kato_s = 2;  // the ghost-write hold is KATO + CQT (0 here): 2 s
    o.reconnect_delay_s = 1;
    o.ctrl_loss_tmo_s = 60;
    auto ctrl = io::testing::TestController::Connect(engine_.get(), o);
    ASSERT_THAT(ctrl, IsOk());
    ASSERT_EQ((*ctrl)->controller()->io_queue_count(), kQueues);
    paths_.push_back(std::make_unique<ControllerPath>((*ctrl)->controller(), 1, kQueues));
    ctrls_.push_back(std::move(*ctrl));
  }
  std::vector<Path*> Raw() const {
    std::vector<Path*> raw;
    for (const auto& p : paths_) raw.push_back(p.get());
    return raw;
  }
  // Replaces the path set on every queue, on the queue's reactor (as the daemon does).
  void Publish(NamespaceHead* head, std::vector<Path*> set) {
    for (uint16_t q = 0; q < kQueues; ++q) {
      io::Engine::RunOn(engine_->io_reactors()[q], [&] {
        head->SetQueuePaths(q, set);
        return 0;
      });
    }
  }
  std::unique_ptr<NamespaceHead> MakeHead(IoPolicy policy = IoPolicy::kRoundRobin) {
    return std::make_unique<NamespaceHead>("mp", Raw(), kBlock, kQueues, kSlots, policy);
  }
  // Commands path `i` carried from now over `ns`.
  uint64_t IosDuring(size_t i, int64_t ns) {
    const uint64_t before = paths_[i]->totals().ios;
    std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
    return paths_[i]->totals().ios - before;
  }
  bool WaitAna(size_t i, uint8_t state) {
    return io::testing::WaitUntil([&] { return paths_[i]->ana_state() == state; }, 5 * kSec);
  }
  void ExpectClean(const BlockLoad& load) {
    EXPECT_EQ(load.errors(), 0u) << load.first_error();
    EXPECT_EQ(load.mismatches(), 0u);
    EXPECT_EQ(load.double_completions(), 0u);
    EXPECT_TRUE(load.TargetHoldsLastWrites(*target_));
  }

  std::unique_ptr<target::Target> target_;
  std::vector<uint16_t> ports_;
  std::unique_ptr<io::Engine> engine_;
  std::vector<std::unique_ptr<io::testing::TestController>> ctrls_;
  std::vector<std::unique_ptr<ControllerPath>> paths_;
};

// ANA states set on the target reach the head through the AEN and the ANA log: an inaccessible
// path gets nothing, non-optimized only when no optimized path is left, and both back to
// optimized share the load again.
TEST_F(MultipathTest, AnaChangesAtRuntimeMoveTheLoad) {
  ASSERT_NO_FATAL_FAILURE(Begin());
  auto head = MakeHead();
  BlockLoad load(head.get(), engine_->io_reactors());
  load.Start();
  ASSERT_TRUE(load.WaitVerified(200, 10 * kSec));
  EXPECT_GT(IosDuring(0, 100 * kMs), 0u);
  EXPECT_GT(IosDuring(1, 100 * kMs), 0u);

  ASSERT_THAT(target_->SetAnaState(0, 1, target::AnaState::kInaccessible), IsOk());
  ASSERT_TRUE(WaitAna(0, nvme::kAnaInaccessible));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // what was in flight finishes
  EXPECT_EQ(IosDuring(0, 200 * kMs), 0u);
  EXPECT_GT(IosDuring(1, 200 * kMs), 0u);

  ASSERT_THAT(target_->SetAnaState(0, 1, target::AnaState::kNonOptimized), IsOk());
  ASSERT_TRUE(WaitAna(0, nvme::kAnaNonOptimized));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(IosDuring(0, 200 * kMs), 0u);  // an optimized path exists

  ASSERT_THAT(target_->SetAnaState(1, 1, target::AnaState::kChange), IsOk());
  ASSERT_TRUE(WaitAna(1, nvme::kAnaChange));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(IosDuring(1, 200 * kMs), 0u);
  EXPECT_GT(IosDuring(0, 200 * kMs), 0u);  // the non-optimized one, as the only one

  ASSERT_THAT(target_->SetAnaState(0, 1, target::AnaState::kOptimized), IsOk());
  ASSERT_THAT(target_->SetAnaState(1, 1, target::AnaState::kOptimized), IsOk());
  ASSERT_TRUE(WaitAna(0, nvme::kAnaOptimized));
  ASSERT_TRUE(WaitAna(1, nvme::kAnaOptimized));
  ASSERT_TRUE(load.WaitVerified(100, 10 * kSec));
  EXPECT_GT(IosDuring(0, 100 * kMs), 0u);
  EXPECT_GT(IosDuring(1, 100 * kMs), 0u);
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(10 * kSec));
  ExpectClean(load);
  EXPECT_GE(ctrls_[0]->controller()->ana_reads(), 3u);
}

// Connections cut mid-I/O again and again on one path, then every path down for 3 s and back:
// nothing fails, nothing is lost or doubled, and the writes cut off wait for the ghost-write
// hold before they go out again.
TEST_F(MultipathTest, CutsAndAllPathsDownLoseNothing) {
  ASSERT_NO_FATAL_FAILURE(Begin([](target::TargetConfig& c) { c.cqt = 300; }));
  // TP 4129: the hold is KATO + CQT.
  EXPECT_EQ(ctrls_[0]->controller()->ghost_hold_ns(), 2 * kSec + 300 * kMs);
  auto head = MakeHead(IoPolicy::kQueueDepth);
  BlockLoad load(head.get(), engine_->io_reactors());
  load.Start();
  ASSERT_TRUE(load.WaitVerified(100, 10 * kSec));
  target::FaultConfig cut;
  cut.term_req = 3;  // three of path 0's I/O connections die with commands in flight
  ASSERT_THAT(target_->SetFault(cut, 0), IsOk());
  ASSERT_TRUE(load.WaitVerified(300, 30 * kSec));
  EXPECT_TRUE(ctrls_[0]->WaitLive(2, 20 * kSec));  // path 0 lost and reconnected at least once
  ASSERT_THAT(target_->SetFault(target::FaultConfig{}, 0), IsOk());
  ASSERT_TRUE(load.WaitVerified(100, 30 * kSec));

  target::FaultConfig down;
  down.term_req = 1'000'000;  // the live connections die at their next command,
  down.cut_after = 0;         // and every new one at its first: the port is unusable
  ASSERT_THAT(target_->SetFault(down, 0), IsOk());
  ASSERT_THAT(target_->SetFault(down, 1), IsOk());
  ASSERT_TRUE(io::testing::WaitUntil(
      [&] {
        return paths_[0]->usability(0) != Path::Usability::kLive &&
               paths_[1]->usability(0) != Path::Usability::kLive;
      },
      10 * kSec));
  const uint64_t before = load.verified();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_LE(load.verified(), before + kQueues * kSlots);  // nothing gets through
  EXPECT_GT(head->stats().parked, 0u);
  target_->ClearFaults();
  ASSERT_TRUE(load.WaitVerified(200, 30 * kSec));
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(20 * kSec));
  ExpectClean(load);
  EXPECT_GT(head->stats().failovers, 0u);
  EXPECT_GT(head->stats().held, 0u);  // unanswered writes waited KATO + CQT
}

// A third path added and the first removed while I/O runs: the new one takes its share, the
// removed one gets nothing once its in-flight commands are done.
TEST_F(MultipathTest, PathsAddedAndRemovedWhileIoRuns) {
  ASSERT_NO_FATAL_FAILURE(Begin());
  auto head = MakeHead();
  BlockLoad load(head.get(), engine_->io_reactors());
  load.Start();
  ASSERT_TRUE(load.WaitVerified(100, 10 * kSec));
  ASSERT_NO_FATAL_FAILURE(AddController(2));
  Publish(head.get(), Raw());
  ASSERT_TRUE(load.WaitVerified(100, 10 * kSec));
  EXPECT_GT(IosDuring(2, 200 * kMs), 0u);
  Publish(head.get(), {paths_[1].get(), paths_[2].get()});
  ASSERT_TRUE(io::testing::WaitUntil([&] { return paths_[0]->totals().in_flight == 0; }, 5 * kSec));
  EXPECT_EQ(IosDuring(0, 200 * kMs), 0u);
  ASSERT_TRUE(load.WaitVerified(100, 10 * kSec));
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(10 * kSec));
  ExpectClean(load);
}

// Commands answered with an ANA status while the ANA log says "optimized": each answer makes the
// path's controller read the log again before the path gets more I/O, and nothing fails.
TEST_F(MultipathTest, PathErrorsRereadTheAnaLogAndLoseNothing) {
  ASSERT_NO_FATAL_FAILURE(Begin());
  auto head = MakeHead();
  BlockLoad load(head.get(), engine_->io_reactors());
  load.Start();
  ASSERT_TRUE(load.WaitVerified(100, 10 * kSec));
  const uint32_t reads = ctrls_[0]->controller()->ana_reads();
  target::FaultConfig errors;
  errors.error_count = 30;  // ANA Inaccessible (SCT 3h SC 2h), not executed
  ASSERT_THAT(target_->SetFault(errors, 0), IsOk());
  ASSERT_TRUE(load.WaitVerified(300, 20 * kSec));
  EXPECT_GT(ctrls_[0]->controller()->ana_reads(), reads);
  EXPECT_EQ(paths_[0]->ana_state(), nvme::kAnaOptimized);
  EXPECT_GT(head->stats().failovers, 0u);
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(10 * kSec));
  ExpectClean(load);
}

// A namespace that stays in ANA "change" longer than ANATT resets its controller (as the kernel
// host does); I/O goes on over the other path meanwhile.
TEST_F(MultipathTest, ChangeLongerThanAnattResetsTheController) {
  ASSERT_NO_FATAL_FAILURE(Begin([](target::TargetConfig& c) { c.anatt = 1; }));
  auto head = MakeHead();
  BlockLoad load(head.get(), engine_->io_reactors());
  load.Start();
  ASSERT_TRUE(load.WaitVerified(100, 10 * kSec));
  ASSERT_THAT(target_->SetAnaState(0, 1, target::AnaState::kChange), IsOk());
  EXPECT_TRUE(ctrls_[0]->WaitLive(2, 15 * kSec));
  EXPECT_THAT(ctrls_[0]->last_reason().message(),
              ::testing::HasSubstr("stayed in ANA state change longer than ANATT (1 s)"));
  ASSERT_THAT(target_->SetAnaState(0, 1, target::AnaState::kOptimized), IsOk());
  ASSERT_TRUE(WaitAna(0, nvme::kAnaOptimized));
  ASSERT_TRUE(load.WaitVerified(100, 10 * kSec));
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(10 * kSec));
  ExpectClean(load);
}

}  // namespace
}  // namespace nvmf_ublk::multipath
