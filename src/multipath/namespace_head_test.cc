#include "multipath/namespace_head.h"

#include <cerrno>
#include <deque>
#include <functional>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/spec.h"

namespace nvmf_ublk::multipath {
namespace {

// A path whose commands complete when the test says so, with the result it chooses.
class FakePath : public Path {
 public:
  explicit FakePath(std::string name) : Path(2), name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  uint32_t nsid() const override { return 7; }
  Usability usability(uint16_t) const override { return usability_; }
  void Submit(uint16_t, io::IoRequest* req) override {
    pending.push_back(req);
    ++submitted;
  }
  int64_t RetryDelayNs(uint8_t crd) const override { return crd * crdt_unit_ns; }
  uint8_t ana_state() const override { return ana; }
  bool ana_refreshing() const override { return refreshing; }
  void OnPathError() override { ++path_errors; }
  int64_t GhostHoldNs() const override { return ghost_hold_ns; }
  int64_t FastFailNs() const override { return fast_fail_ns; }
  int64_t LossTimeoutNs() const override { return loss_ns; }

  // Completes the oldest pending command.
  void Complete(io::IoResult r) {
    io::IoRequest* req = pending.front();
    pending.pop_front();
    req->callback->OnIoDone(req, r);
  }

  Usability usability_ = Usability::kLive;
  uint8_t ana = nvme::kAnaOptimized;
  bool refreshing = false;
  int64_t crdt_unit_ns = 100'000'000;  // what CRDTn reports, per n
  int64_t ghost_hold_ns = 0;
  int64_t fast_fail_ns = -1;
  int64_t loss_ns = -1;
  std::deque<io::IoRequest*> pending;
  int submitted = 0;
  int path_errors = 0;

 private:
  std::string name_;
};

// Time stands still until the test advances it; timers fire in due order.
class FakeClock : public HeadClock {
 public:
  int64_t Now() override { return now; }
  void After(uint16_t, int64_t delay_ns, std::function<void()> fn) override {
    delays.push_back(delay_ns);
    timers.emplace(now + delay_ns, std::move(fn));
  }
  void Advance(int64_t ns) {
    const int64_t until = now + ns;
    while (!timers.empty() && timers.begin()->first <= until) {
      auto it = timers.begin();
      now = std::max(now, it->first);
      auto fn = std::move(it->second);
      timers.erase(it);
      fn();
    }
    now = until;
  }
  int64_t now = 1'000'000'000;
  std::multimap<int64_t, std::function<void()>> timers;
  std::vector<int64_t> delays;
};

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

io::IoResult Nvme(uint8_t sct, uint8_t sc, bool dnr = false, uint8_t crd = 0) {
  io::IoResult r;
  r.status = nvme::MakeStatus(sct, sc, dnr, crd);
  return r;
}

struct Harness {
  std::vector<std::unique_ptr<FakePath>> fakes;
  std::shared_ptr<FakeClock> clock = std::make_shared<FakeClock>();
  std::unique_ptr<NamespaceHead> head;
  explicit Harness(int paths, uint32_t lba = 512, IoPolicy policy = IoPolicy::kRoundRobin) {
    std::vector<Path*> raw;
    for (int i = 0; i < paths; ++i) {
      fakes.push_back(std::make_unique<FakePath>("p" + std::to_string(i)));
      raw.push_back(fakes.back().get());
    }
    head = std::make_unique<NamespaceHead>("head", raw, lba, /*queues=*/2, /*depth=*/64, policy,
                                           clock);
  }
  FakePath& p(int i) { return *fakes[i]; }
};

// Records each BlockIo's result instead of committing it to the kernel, and how often each one
// completed (exactly once, always).
class HeadTest : public ::testing::Test, public ublk::BlockIoSink {
 protected:
  void OnBlockIoComplete(ublk::BlockIo* io, int result) override {
    results[io] = result;
    ++completions[io];
  }
  ublk::BlockIo Io(ublk::BlockIo::Op op, uint64_t off, uint32_t len, uint16_t tag = 0) {
    ublk::BlockIo io;
    io.op = op;
    io.offset_bytes = off;
    io.len_bytes = len;
    io.tag = tag;
    io.queue = 1;
    io.buffer = buf;
    io.set_sink(this);
    return io;
  }
  std::map<const ublk::BlockIo*, int> results;
  std::map<const ublk::BlockIo*, int> completions;
  uint8_t buf[8192];
};

TEST_F(HeadTest, TranslatesEachOperation) {
  Harness h(1, 512);
  FakePath& p = h.p(0);
  auto rd = Io(ublk::BlockIo::kRead, 4096, 8192, 0);
  h.head->Submit(&rd);
  ASSERT_EQ(p.pending.size(), 1u);
  EXPECT_EQ(p.pending[0]->sqe.opcode, static_cast<uint8_t>(nvme::IoOpcode::kRead));
  EXPECT_EQ(p.pending[0]->sqe.nsid.get(), 7u);
  EXPECT_EQ(p.pending[0]->sqe.cdw10.get(), 8u);            // SLBA 4096/512
  EXPECT_EQ(p.pending[0]->sqe.cdw12.get() & 0xFFFF, 15u);  // 16 blocks, 0-based
  EXPECT_EQ(p.pending[0]->len, 8192u);
  p.Complete({});
  EXPECT_EQ(results[&rd], 8192);

  auto wr = Io(ublk::BlockIo::kWrite, 0, 512, 1);
  wr.fua = true;
  h.head->Submit(&wr);
  EXPECT_EQ(p.pending[0]->sqe.cdw12.get() & nvme::kRwFua, nvme::kRwFua);
  p.Complete({});
  EXPECT_EQ(results[&wr], 512);

  auto fl = Io(ublk::BlockIo::kFlush, 0, 0, 2);
  h.head->Submit(&fl);
  EXPECT_EQ(p.pending[0]->sqe.opcode, static_cast<uint8_t>(nvme::IoOpcode::kFlush));
  p.Complete({});
  EXPECT_EQ(results[&fl], 0);

  auto dc = Io(ublk::BlockIo::kDiscard, 1 << 20, 1 << 20, 3);
  h.head->Submit(&dc);
  io::IoRequest* d = p.pending[0];
  EXPECT_EQ(d->sqe.opcode, static_cast<uint8_t>(nvme::IoOpcode::kDatasetManagement));
  EXPECT_EQ(d->len, 16u);
  const auto* range = static_cast<const nvme::DsmRange*>(d->data);
  EXPECT_EQ(range->slba.get(), 2048u);
  EXPECT_EQ(range->nlb.get(), 2048u);
  EXPECT_EQ(d->sqe.cdw11.get() & nvme::kDsmDeallocate, nvme::kDsmDeallocate);
  p.Complete({});
  EXPECT_EQ(results[&dc], 0);

  auto wz = Io(ublk::BlockIo::kWriteZeroes, 0, 4096, 0);
  wz.nounmap = true;
  h.head->Submit(&wz);
  EXPECT_EQ(p.pending[0]->sqe.cdw12.get() & nvme::kWriteZeroesDeac, 0u);
  p.Complete({});
  EXPECT_EQ(results[&wz], 0);
}

// A request whose only path is reconnecting waits at the head, not at the path, and goes out once
// when the path is back.
TEST_F(HeadTest, TransportFailureWaitsAtTheHeadAndIsNeverDuplicated) {
  Harness h(1);
  FakePath& p = h.p(0);
  auto rd = Io(ublk::BlockIo::kRead, 0, 512);
  h.head->Submit(&rd);
  p.usability_ = Path::Usability::kConnecting;  // the controller is reconnecting
  p.Complete(io::IoResult{-ECONNABORTED});
  EXPECT_TRUE(p.pending.empty());
  EXPECT_EQ(h.head->stats().parked, 1u);
  h.clock->Advance(5 * kSec);
  EXPECT_TRUE(p.pending.empty());
  EXPECT_TRUE(results.empty());
  p.usability_ = Path::Usability::kLive;
  h.clock->Advance(20 * kMs);
  ASSERT_EQ(p.pending.size(), 1u);
  p.Complete({});
  EXPECT_EQ(results[&rd], 512);
  EXPECT_EQ(completions[&rd], 1);
  EXPECT_EQ(p.submitted, 2);
  EXPECT_EQ(h.head->stats().failovers, 1u);
  EXPECT_EQ(h.head->stats().parked, 0u);
}

// A stuck device teardown abandons the head: a request in flight still completes (here failed by
// its controller going away, which would otherwise re-issue it), and new requests fail at once;
// neither reaches a path again.
TEST_F(HeadTest, AbandonedHeadNeverTouchesAPathAgain) {
  Harness h(1);
  FakePath& p = h.p(0);
  auto rd = Io(ublk::BlockIo::kRead, 0, 512, /*tag=*/0);
  h.head->Submit(&rd);
  ASSERT_EQ(p.pending.size(), 1u);
  h.head->Abandon();
  p.Complete(io::IoResult{-ECONNABORTED});  // would be a failover to a live path
  EXPECT_TRUE(p.pending.empty());
  EXPECT_EQ(results[&rd], -EIO);
  auto wr = Io(ublk::BlockIo::kWrite, 512, 512, /*tag=*/1);
  h.head->Submit(&wr);
  EXPECT_TRUE(p.pending.empty());
  EXPECT_EQ(results[&wr], -EIO);
}

TEST_F(HeadTest, PathErrorFailsOverToTheOtherPath) {
  Harness h(2);
  auto rd = Io(ublk::BlockIo::kRead, 0, 512);
  h.head->Submit(&rd);
  FakePath* first = h.fakes[0]->pending.empty() ? h.fakes[1].get() : h.fakes[0].get();
  FakePath* second = first == h.fakes[0].get() ? h.fakes[1].get() : h.fakes[0].get();
  first->usability_ = Path::Usability::kDown;
  first->Complete(Nvme(nvme::kSctPath, nvme::kScAnaInaccessible));
  EXPECT_EQ(first->path_errors, 1);  // the ANA log is read again
  ASSERT_EQ(second->pending.size(), 1u);
  second->Complete({});
  EXPECT_EQ(results[&rd], 512);
}

TEST_F(HeadTest, NoUsablePathFailsWithEio) {
  Harness h(1);
  FakePath& p = h.p(0);
  auto rd = Io(ublk::BlockIo::kRead, 0, 512);
  h.head->Submit(&rd);
  p.usability_ = Path::Usability::kDown;
  p.Complete(io::IoResult{-ENOTCONN});
  EXPECT_TRUE(p.pending.empty());
  EXPECT_EQ(results[&rd], -EIO);
  auto again = Io(ublk::BlockIo::kRead, 0, 512, 1);
  h.head->Submit(&again);
  EXPECT_EQ(results[&again], -EIO);
}

// CRDT is 16 bits of 100 ms: a target may ask for 6553.5 s. One retry waits 10 s at most.
TEST_F(HeadTest, CommandRetryDelayIsClamped) {
  Harness h(1);
  FakePath& p = h.p(0);
  p.crdt_unit_ns = 65535LL * 100'000'000;
  auto wr = Io(ublk::BlockIo::kWrite, 0, 512);
  h.head->Submit(&wr);
  p.Complete(Nvme(nvme::kSctGeneric, nvme::kScNamespaceNotReady, false, 1));
  ASSERT_EQ(h.clock->delays.size(), 1u);
  EXPECT_EQ(h.clock->delays[0], 10'000'000'000);
  h.clock->Advance(10 * kSec);
  p.Complete({});
  EXPECT_EQ(results[&wr], 512);
}

TEST_F(HeadTest, DnrErrorsFailWithTheirErrnoAndRetryLaterWaits) {
  Harness h(1);
  FakePath& p = h.p(0);
  auto rd = Io(ublk::BlockIo::kRead, 0, 512);
  h.head->Submit(&rd);
  p.Complete(Nvme(nvme::kSctGeneric, nvme::kScLbaOutOfRange, true));
  EXPECT_EQ(results[&rd], -ERANGE);

  auto wr = Io(ublk::BlockIo::kWrite, 0, 512, 1);
  h.head->Submit(&wr);
  p.Complete(Nvme(nvme::kSctGeneric, nvme::kScNamespaceNotReady, false, 2));
  ASSERT_EQ(h.clock->delays.size(), 1u);
  EXPECT_EQ(h.clock->delays[0], 200'000'000);  // CRDT2 in this fake
  EXPECT_TRUE(p.pending.empty());
  h.clock->Advance(200 * kMs);
  ASSERT_EQ(p.pending.size(), 1u);
  p.Complete({});
  EXPECT_EQ(results[&wr], 512);

  auto wr2 = Io(ublk::BlockIo::kWrite, 0, 512, 2);
  h.head->Submit(&wr2);
  for (int i = 0; i < 6; ++i) p.Complete(Nvme(nvme::kSctGeneric, nvme::kScAbortRequested));
  EXPECT_TRUE(p.pending.empty());
  EXPECT_EQ(results[&wr2], -EIO);  // bounded retries
}

// ANA (DESIGN.md §5): optimized paths first; non-optimized only without a usable optimized one;
// inaccessible / change never (requests wait); persistent loss never (and nothing to wait for).
TEST_F(HeadTest, AnaStatesOrderThePaths) {
  Harness h(2);
  h.p(0).ana = nvme::kAnaNonOptimized;
  std::vector<ublk::BlockIo> ios;
  ios.reserve(8);
  for (uint16_t i = 0; i < 4; ++i) {
    ios.push_back(Io(ublk::BlockIo::kRead, 0, 512, i));
    h.head->Submit(&ios.back());
  }
  EXPECT_EQ(h.p(0).pending.size(), 0u);
  EXPECT_EQ(h.p(1).pending.size(), 4u);
  h.p(1).ana = nvme::kAnaInaccessible;
  ios.push_back(Io(ublk::BlockIo::kRead, 0, 512, 4));
  h.head->Submit(&ios.back());
  EXPECT_EQ(h.p(0).pending.size(), 1u);  // the non-optimized one, as the only accessible path
  h.p(0).ana = nvme::kAnaChange;
  ios.push_back(Io(ublk::BlockIo::kRead, 0, 512, 5));
  h.head->Submit(&ios.back());
  EXPECT_EQ(h.head->stats().parked, 1u);  // both in transition or inaccessible: it waits
  h.clock->Advance(100 * kMs);
  EXPECT_EQ(h.head->stats().parked, 1u);
  h.p(1).ana = nvme::kAnaOptimized;
  h.clock->Advance(10 * kMs);
  EXPECT_EQ(h.p(1).pending.size(), 5u);
  h.p(0).ana = nvme::kAnaPersistentLoss;
  h.p(1).ana = nvme::kAnaPersistentLoss;
  ios.push_back(Io(ublk::BlockIo::kRead, 0, 512, 6));
  h.head->Submit(&ios.back());
  EXPECT_EQ(results[&ios.back()], -EIO);
}

// A path whose ANA log is being re-read after a path error gets nothing until it is back.
TEST_F(HeadTest, RefreshingPathIsSkipped) {
  Harness h(2);
  h.p(0).refreshing = true;
  auto a = Io(ublk::BlockIo::kRead, 0, 512, 0), b = Io(ublk::BlockIo::kRead, 0, 512, 1);
  h.head->Submit(&a);
  h.head->Submit(&b);
  EXPECT_EQ(h.p(0).pending.size(), 0u);
  EXPECT_EQ(h.p(1).pending.size(), 2u);
}

TEST_F(HeadTest, RoundRobinAlternates) {
  Harness h(3);
  std::vector<ublk::BlockIo> ios;
  ios.reserve(9);
  for (uint16_t i = 0; i < 9; ++i) {
    ios.push_back(Io(ublk::BlockIo::kRead, 0, 512, i));
    h.head->Submit(&ios.back());
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(h.p(i).pending.size(), 3u) << i;
}

TEST_F(HeadTest, QueueDepthPicksTheLeastBusyPath) {
  Harness h(2, 512, IoPolicy::kQueueDepth);
  std::vector<ublk::BlockIo> ios;
  ios.reserve(16);
  for (uint16_t i = 0; i < 4; ++i) {
    ios.push_back(Io(ublk::BlockIo::kRead, 0, 512, i));
    h.head->Submit(&ios.back());
  }
  EXPECT_EQ(h.p(0).pending.size(), 2u);
  EXPECT_EQ(h.p(1).pending.size(), 2u);
  h.p(1).Complete({});
  h.p(1).Complete({});  // p1 is idle now, p0 has two
  for (uint16_t i = 4; i < 6; ++i) {
    ios.push_back(Io(ublk::BlockIo::kRead, 0, 512, i));
    h.head->Submit(&ios.back());
  }
  EXPECT_EQ(h.p(0).pending.size(), 2u);
  EXPECT_EQ(h.p(1).pending.size(), 2u);
}

TEST_F(HeadTest, FailoverPolicyUsesOnePathUntilItGoes) {
  Harness h(2, 512, IoPolicy::kRoundRobin);
  h.head->set_policy(IoPolicy::kFailover);  // changed live
  EXPECT_EQ(h.head->policy(), IoPolicy::kFailover);
  std::vector<ublk::BlockIo> ios;
  ios.reserve(8);
  for (uint16_t i = 0; i < 4; ++i) {
    ios.push_back(Io(ublk::BlockIo::kWrite, 0, 512, i));
    h.head->Submit(&ios.back());
  }
  EXPECT_EQ(h.p(0).pending.size(), 4u);
  h.p(0).usability_ = Path::Usability::kDown;
  for (int i = 0; i < 4; ++i) h.p(0).Complete(io::IoResult{-ENOTCONN});  // never sent
  EXPECT_EQ(h.p(1).pending.size(), 4u);                                  // unsent: no ghost hold
}

// Latency: the path with the lower recent service time gets the requests, and 1 in 16 probes
// the other so a path that got faster is noticed.
TEST_F(HeadTest, LatencyPolicyPrefersTheFasterPathAndProbes) {
  Harness h(2, 512, IoPolicy::kLatency);
  auto run = [&](int n, int64_t slow_ns, int64_t fast_ns) {
    int to_slow = 0;
    for (int i = 0; i < n; ++i) {
      auto io = Io(ublk::BlockIo::kRead, 0, 512, 0);
      h.head->Submit(&io);
      FakePath* p = h.p(0).pending.empty() ? &h.p(1) : &h.p(0);
      if (p == &h.p(0)) ++to_slow;
      h.clock->Advance(p == &h.p(0) ? slow_ns : fast_ns);
      p->Complete({});
      EXPECT_EQ(results[&io], 512);
    }
    return to_slow;
  };
  run(4, 1 * kMs, 100'000);  // both get a sample
  const int to_slow = run(160, 1 * kMs, 100'000);
  EXPECT_GE(to_slow, 5);  // probes
  EXPECT_LE(to_slow, 15);
  EXPECT_GT(h.p(0).totals().latency_ns, h.p(1).totals().latency_ns);
  // The slow path becomes the fast one: the probes notice, and it takes over.
  run(200, 1 * kMs, 1 * kMs);
  const int after = run(160, 50'000, 1 * kMs);
  EXPECT_GE(after, 140);
}

// A path that failed a request over (here its connection dropped while it stays "live": it
// flaps) is second choice for 10 s: the requests go to the stable path meanwhile.
TEST_F(HeadTest, PathThatFailedLatelyIsSecondChoice) {
  Harness h(2, 512, IoPolicy::kFailover);
  auto a = Io(ublk::BlockIo::kRead, 0, 512, 0);
  h.head->Submit(&a);
  ASSERT_EQ(h.p(0).pending.size(), 1u);
  h.p(0).Complete(io::IoResult{-ECONNABORTED});  // p0 comes straight back, as a flapping path does
  ASSERT_EQ(h.p(1).pending.size(), 1u);
  h.p(1).Complete({});
  h.clock->Advance(9 * kSec);
  auto b = Io(ublk::BlockIo::kRead, 0, 512, 1);
  h.head->Submit(&b);
  EXPECT_EQ(h.p(1).pending.size(), 1u);
  h.p(1).Complete({});
  h.clock->Advance(2 * kSec);
  auto c = Io(ublk::BlockIo::kRead, 0, 512, 2);
  h.head->Submit(&c);
  EXPECT_EQ(h.p(0).pending.size(), 1u);  // stable again: first in order
  h.p(0).Complete({});
  // With no stable path left, a recently failed one is used rather than none.
  h.p(1).usability_ = Path::Usability::kDown;
  auto d = Io(ublk::BlockIo::kRead, 0, 512, 3);
  h.head->Submit(&d);
  h.p(0).Complete(io::IoResult{-ECONNABORTED});
  h.p(1).usability_ = Path::Usability::kLive;
  h.p(1).ana = nvme::kAnaInaccessible;
  ASSERT_EQ(h.p(0).pending.size(), 1u);
  h.p(0).Complete({});
  EXPECT_EQ(results[&d], 512);
}

// TP 4129: a write that the dead association never answered waits KATO + CQT before it goes to
// another path; a read goes at once; a write the target answered with a path error goes at once.
TEST_F(HeadTest, UnansweredWriteIsHeldForKatoPlusCqt) {
  Harness h(2, 512, IoPolicy::kFailover);
  h.p(0).ghost_hold_ns = 5 * kSec + 20 * kMs;
  auto wr = Io(ublk::BlockIo::kWrite, 0, 512, 0);
  auto rd = Io(ublk::BlockIo::kRead, 0, 512, 1);
  auto wr2 = Io(ublk::BlockIo::kWrite, 4096, 512, 2);
  h.head->Submit(&wr);
  h.head->Submit(&rd);
  h.head->Submit(&wr2);
  ASSERT_EQ(h.p(0).pending.size(), 3u);
  h.p(0).usability_ = Path::Usability::kConnecting;
  h.p(0).Complete(io::IoResult{-ECONNABORTED});  // wr: sent, never answered
  h.p(0).Complete(io::IoResult{-ECONNABORTED});  // rd
  EXPECT_EQ(h.p(1).pending.size(), 1u);          // only the read
  EXPECT_EQ(h.head->stats().held, 1u);
  h.p(1).Complete({});
  EXPECT_EQ(results[&rd], 512);
  h.p(0).Complete(Nvme(nvme::kSctPath, nvme::kScAnaTransition));  // wr2: answered
  EXPECT_EQ(h.p(1).pending.size(), 1u);
  h.p(1).Complete({});
  EXPECT_EQ(results[&wr2], 512);
  h.clock->Advance(5 * kSec);
  EXPECT_TRUE(h.p(1).pending.empty());
  EXPECT_EQ(results.count(&wr), 0u);
  h.clock->Advance(40 * kMs);
  ASSERT_EQ(h.p(1).pending.size(), 1u);
  h.p(1).Complete({});
  EXPECT_EQ(results[&wr], 512);
  EXPECT_EQ(completions[&wr], 1);
}

TEST_F(HeadTest, WaitIsBoundedByFastIoFailTmo) {
  Harness h(2);
  for (auto& f : h.fakes) {
    f->fast_fail_ns = 2 * kSec;
    f->usability_ = Path::Usability::kConnecting;
  }
  auto rd = Io(ublk::BlockIo::kRead, 0, 512, 0);
  h.head->Submit(&rd);
  h.clock->Advance(1900 * kMs);
  EXPECT_EQ(results.count(&rd), 0u);
  h.clock->Advance(200 * kMs);
  EXPECT_EQ(results[&rd], -EIO);
  EXPECT_EQ(h.head->stats().parked, 0u);
}

// Only one path bounds the wait: the other waits forever (-1), so the request does too, and it
// goes out when that one is back (e.g. after 30 s).
TEST_F(HeadTest, OnePathWithoutABoundKeepsRequestsWaiting) {
  Harness h(2);
  h.p(0).fast_fail_ns = 1 * kSec;
  h.p(0).usability_ = Path::Usability::kConnecting;
  h.p(1).usability_ = Path::Usability::kConnecting;
  auto rd = Io(ublk::BlockIo::kRead, 0, 512, 0);
  h.head->Submit(&rd);
  h.clock->Advance(30 * kSec);
  EXPECT_EQ(results.count(&rd), 0u);
  h.p(1).usability_ = Path::Usability::kLive;
  h.clock->Advance(20 * kMs);
  ASSERT_EQ(h.p(1).pending.size(), 1u);
  h.p(1).Complete({});
  EXPECT_EQ(results[&rd], 512);
}

// A target that answers every command with a path error while its ANA log keeps saying
// "optimized": the request backs off (no busy loop) and fails once ctrl_loss_tmo has passed.
TEST_F(HeadTest, EndlessPathErrorsBackOffAndEndAtCtrlLossTmo) {
  Harness h(1);
  FakePath& p = h.p(0);
  p.loss_ns = 10 * kSec;
  auto wr = Io(ublk::BlockIo::kWrite, 0, 512, 0);
  h.head->Submit(&wr);
  for (int i = 0; i < 1000 && results.count(&wr) == 0; ++i) {
    if (!p.pending.empty()) p.Complete(Nvme(nvme::kSctPath, nvme::kScAnaTransition));
    h.clock->Advance(50 * kMs);
  }
  EXPECT_EQ(results[&wr], -EIO);
  EXPECT_GE(h.clock->now, 10 * kSec);
  EXPECT_LT(p.submitted, 40);  // 1 ms, 2 ms, ... 1 s apart: not thousands
  EXPECT_EQ(p.path_errors, p.submitted);
}

// Paths come and go while requests run: a new path takes waiting requests; a removed path gets
// no new request, and what was in flight on it still completes through it (and fails over).
TEST_F(HeadTest, PathsAddedAndRemovedAtRuntime) {
  Harness h(1);
  FakePath& a = h.p(0);
  FakePath b("b");
  a.usability_ = Path::Usability::kConnecting;
  auto w1 = Io(ublk::BlockIo::kRead, 0, 512, 0);
  h.head->Submit(&w1);
  EXPECT_EQ(h.head->stats().parked, 1u);
  h.head->SetQueuePaths(1, {&a, &b});
  h.clock->Advance(0);
  ASSERT_EQ(b.pending.size(), 1u);
  a.usability_ = Path::Usability::kLive;
  auto w2 = Io(ublk::BlockIo::kRead, 0, 512, 1);
  h.head->Submit(&w2);
  ASSERT_EQ(a.pending.size(), 1u);  // round-robin: a's turn
  h.head->SetQueuePaths(1, {&b});
  auto w3 = Io(ublk::BlockIo::kRead, 0, 512, 2);
  h.head->Submit(&w3);
  EXPECT_EQ(a.pending.size(), 1u);
  EXPECT_EQ(b.pending.size(), 2u);
  a.Complete(io::IoResult{-ECONNABORTED});  // a's controller goes away
  EXPECT_EQ(b.pending.size(), 3u);
  while (!b.pending.empty()) b.Complete({});
  EXPECT_EQ(results[&w1], 512);
  EXPECT_EQ(results[&w2], 512);
  EXPECT_EQ(results[&w3], 512);
  h.head->SetQueuePaths(1, {});
  auto w4 = Io(ublk::BlockIo::kRead, 0, 512, 3);
  h.head->Submit(&w4);
  EXPECT_EQ(results[&w4], -EIO);
}

TEST_F(HeadTest, FailWaitingEndsWaitingRequests) {
  Harness h(1);
  h.p(0).usability_ = Path::Usability::kConnecting;
  auto rd = Io(ublk::BlockIo::kRead, 0, 512, 0);
  h.head->Submit(&rd);
  h.head->FailWaiting();
  h.clock->Advance(20 * kMs);
  EXPECT_EQ(results[&rd], -EIO);
  auto again = Io(ublk::BlockIo::kRead, 0, 512, 1);
  h.head->Submit(&again);
  EXPECT_EQ(results[&again], -EIO);
}

// Requeue accounting under churn: random outcomes and path state flips; every request completes
// exactly once, and nothing is left waiting or in flight at the end.
TEST_F(HeadTest, EveryRequestCompletesExactlyOnceUnderChurn) {
  Harness h(3);
  for (auto& f : h.fakes) f->ghost_hold_ns = 300 * kMs;
  uint32_t rng = 12345;
  auto next = [&] {
    rng = rng * 1103515245u + 12345u;
    return (rng >> 16) & 0x7FFF;
  };
  std::vector<ublk::BlockIo> ios(48);
  std::vector<bool> busy(ios.size(), false);
  int submitted = 0;
  for (int step = 0; step < 20000; ++step) {
    const uint32_t r = next() % 100;
    if (r < 30) {
      const size_t i = next() % ios.size();
      if (!busy[i] || completions[&ios[i]] > 0) {
        if (busy[i]) completions.erase(&ios[i]);
        ios[i] = Io(next() % 2 ? ublk::BlockIo::kWrite : ublk::BlockIo::kRead, 0, 512,
                    static_cast<uint16_t>(i));
        busy[i] = true;
        ++submitted;
        h.head->Submit(&ios[i]);
      }
    } else if (r < 80) {
      FakePath& p = h.p(next() % 3);
      if (!p.pending.empty()) {
        const uint32_t o = next() % 10;
        p.Complete(o < 6   ? io::IoResult{}
                   : o < 8 ? io::IoResult{-ECONNABORTED}
                   : o < 9 ? Nvme(nvme::kSctPath, nvme::kScAnaInaccessible)
                           : Nvme(nvme::kSctGeneric, nvme::kScLbaOutOfRange, true));
      }
    } else if (r < 90) {
      FakePath& p = h.p(next() % 3);
      const uint32_t u = next() % 3;
      p.usability_ = u == 0   ? Path::Usability::kLive
                     : u == 1 ? Path::Usability::kConnecting
                              : Path::Usability::kLive;
      p.ana = next() % 4 == 0 ? nvme::kAnaInaccessible : nvme::kAnaOptimized;
    } else {
      h.clock->Advance(static_cast<int64_t>(next() % 50) * kMs);
    }
    for (const auto& [io, n] : completions) ASSERT_LE(n, 1) << "step " << step;
  }
  // Drain: every path live and optimized, everything completes.
  for (auto& f : h.fakes) {
    f->usability_ = Path::Usability::kLive;
    f->ana = nvme::kAnaOptimized;
  }
  for (int round = 0; round < 200; ++round) {
    for (auto& f : h.fakes) {
      while (!f->pending.empty()) f->Complete({});
    }
    h.clock->Advance(100 * kMs);
  }
  for (size_t i = 0; i < ios.size(); ++i) {
    if (busy[i]) {
      EXPECT_EQ(completions[&ios[i]], 1) << "tag " << i;
    }
  }
  EXPECT_EQ(h.head->stats().parked, 0u);
  EXPECT_GT(submitted, 1000);
  for (auto& f : h.fakes) EXPECT_EQ(f->totals().in_flight, 0u);
}

TEST(CheckAnotherPath, SameNamespaceWithLimitsAtLeastTheDevicesIsAccepted) {
  PathView dev;
  dev.ns.nsze = 1 << 20;
  dev.ns.lba_bytes = 4096;
  dev.ids.nguid = std::array<uint8_t, 16>{1, 2, 3};
  dev.ids.uuid = std::array<uint8_t, 16>{9};
  dev.params.max_transfer_bytes = 128 * 1024;
  dev.params.max_discard_bytes = 1 << 30;
  PathView p = dev;
  p.ids.uuid.reset();  // an identifier one path does not report is no disagreement
  p.params.max_transfer_bytes = 1 << 20;
  EXPECT_TRUE(CheckAnotherPath(dev, p).ok());

  auto refused = [&](const PathView& v, const char* why) {
    const absl::Status s = CheckAnotherPath(dev, v);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << why;
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(why));
  };
  PathView bigger = dev;
  bigger.ns.nsze += 8;
  refused(bigger, "it has 1048584 blocks, the device 1048576");
  PathView format = dev;
  format.ns.lba_bytes = 512;
  refused(format, "its LBA format is 512+0 bytes, the device's 4096+0");
  PathView other = dev;
  other.ids.uuid = std::array<uint8_t, 16>{8};
  refused(other, "disagree with the device's");
  PathView small = dev;
  small.params.max_transfer_bytes = 64 * 1024;
  refused(small, "it takes at most 65536 bytes per command, the device was set up for 131072");
  PathView nodsm = dev;
  nodsm.params.max_discard_bytes = 0;
  refused(nodsm, "does not support deallocate");
}

TEST(IoPolicy, ParsesItsNames) {
  for (IoPolicy p :
       {IoPolicy::kRoundRobin, IoPolicy::kQueueDepth, IoPolicy::kFailover, IoPolicy::kLatency}) {
    auto parsed = ParseIoPolicy(ToString(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  auto bad = ParseIoPolicy("numa");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("round-robin"));
}

TEST(DeviceParamsFor, FromIdentify) {
  nvme::ControllerInfo c;
  c.oncs = (1u << 2) | (1u << 3);
  c.vwc = 1;
  nvme::NamespaceInfo ns;
  ns.nsze = 1u << 20;
  ns.lba_bytes = 4096;
  ublk::DeviceParams p = DeviceParamsFor(c, ns, /*mdts=*/128 * 1024, /*max_io=*/512 * 1024);
  EXPECT_EQ(p.size_bytes, 4096ull << 20);
  EXPECT_EQ(p.logical_block_size, 4096u);
  EXPECT_EQ(p.max_transfer_bytes, 128u * 1024);
  EXPECT_TRUE(p.volatile_cache);
  EXPECT_TRUE(p.fua);
  EXPECT_GT(p.max_discard_bytes, 0u);
  EXPECT_EQ(p.max_write_zeroes_bytes, 65536ull * 4096);
  c.oncs = 0;
  c.vwc = 0;
  p = DeviceParamsFor(c, ns, 0, 512 * 1024);
  EXPECT_EQ(p.max_transfer_bytes, 512u * 1024);
  EXPECT_FALSE(p.volatile_cache);
  EXPECT_EQ(p.max_discard_bytes, 0u);
  EXPECT_EQ(p.max_write_zeroes_bytes, 0u);
}

}  // namespace
}  // namespace nvmf_ublk::multipath
