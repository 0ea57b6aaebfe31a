#include "io/reactor.h"

#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::io {
namespace {

using ::nvmf_ublk::testing::IsOk;

class Counter : public CompletionHandler {
 public:
  void OnCompletion(uint8_t op, uint16_t tag, int32_t res, uint32_t) override {
    seen.push_back({op, tag, res});
  }
  struct Seen {
    uint8_t op;
    uint16_t tag;
    int32_t res;
  };
  std::vector<Seen> seen;
};

TEST(Reactor, SetsUpARingAndRunsNops) {
  Reactor r({64, "test"});
  ASSERT_THAT(r.Init(), IsOk());
  Counter c;
  HandlerId id = r.Register(&c);
  for (uint16_t i = 0; i < 200; ++i) io_uring_prep_nop(r.GetSqe(id, 7, i));  // > SQ size
  while (c.seen.size() < 200) r.RunOnce(100'000'000);
  EXPECT_EQ(c.seen[0].op, 7);
  EXPECT_EQ(c.seen[199].tag, 199);
  EXPECT_EQ(c.seen[5].res, 0);
}

TEST(Reactor, CompletionsForUnregisteredHandlersAreDropped) {
  Reactor r({64, "test"});
  ASSERT_THAT(r.Init(), IsOk());
  Counter a, b;
  HandlerId ia = r.Register(&a);
  io_uring_prep_nop(r.GetSqe(ia, 1, 1));
  r.Unregister(ia);
  HandlerId ib = r.Register(&b);  // reuses the slot with a new generation
  EXPECT_EQ(ib.slot, ia.slot);
  EXPECT_NE(ib.gen, ia.gen);
  io_uring_prep_nop(r.GetSqe(ib, 2, 2));
  while (b.seen.empty()) r.RunOnce(100'000'000);
  r.RunOnce(0);
  EXPECT_TRUE(a.seen.empty());
  ASSERT_EQ(b.seen.size(), 1u);
  EXPECT_EQ(b.seen[0].op, 2);
}

TEST(Reactor, TimersFireInOrderAndCancel) {
  Reactor r({64, "test"});
  ASSERT_THAT(r.Init(), IsOk());
  std::vector<int> fired;
  // Before the timers are armed: each deadline is at least its delay after this.
  const int64_t start = MonotonicNanos();
  r.AddTimerAfter(30'000'000, [&] { fired.push_back(3); });
  r.AddTimerAfter(10'000'000, [&] { fired.push_back(1); });
  auto cancel = r.AddTimerAfter(20'000'000, [&] { fired.push_back(2); });
  r.CancelTimer(cancel);
  while (fired.size() < 2 && MonotonicNanos() - start < 2'000'000'000) r.RunOnce(-1);
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
  EXPECT_GE(MonotonicNanos() - start, 30'000'000);
}

TEST(Reactor, PostFromOtherThreadsAndStop) {
  Reactor r({64, "test"});
  ASSERT_THAT(r.StartThread(), IsOk());
  std::atomic<int> n{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < 250; ++i) r.Post([&] { n.fetch_add(1); });
    });
  }
  for (auto& t : posters) t.join();
  std::atomic<bool> on_thread{false};
  r.Post([&] { on_thread = r.InReactorThread(); });
  const int64_t start = MonotonicNanos();
  while (n.load() < 1000 && MonotonicNanos() - start < 5'000'000'000) std::this_thread::yield();
  r.Stop();
  r.Join();
  EXPECT_EQ(n.load(), 1000);
  EXPECT_TRUE(on_thread.load());
  EXPECT_FALSE(r.InReactorThread());
}

class FlushCounter : public Flushable {
 public:
  int flushes = 0;
  void Flush() override { ++flushes; }
};

TEST(Reactor, FlushRunsOncePerTurnPerRequester) {
  Reactor r({64, "test"});
  ASSERT_THAT(r.Init(), IsOk());
  FlushCounter f, g;
  r.RequestFlush(&f);
  r.RequestFlush(&f);
  r.RequestFlush(&g);
  r.RunOnce(0);
  EXPECT_EQ(f.flushes, 1);
  EXPECT_EQ(g.flushes, 1);
  r.RequestFlush(&f);
  r.CancelFlush(&f);
  r.RunOnce(0);
  EXPECT_EQ(f.flushes, 1);
}

long VoluntarySwitchesOfThisThread() {
  rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nvcsw;
}

TEST(Reactor, PollingFindsACompletionWithoutSleeping) {
  Reactor r({64, "poll", /*poll_ns=*/2'000'000'000});
  ASSERT_THAT(r.Init(), IsOk());
  Counter c;
  HandlerId id = r.Register(&c);
  __kernel_timespec ts{0, 5'000'000};  // completes in 5 ms
  io_uring_prep_timeout(r.GetSqe(id, 3, 1), &ts, 0, 0);
  const long before = VoluntarySwitchesOfThisThread();
  const int64_t start = MonotonicNanos();
  r.RunOnce(-1);  // polls: the completion arrives while it looks for it
  const long switches = VoluntarySwitchesOfThisThread() - before;
  ASSERT_EQ(c.seen.size(), 1u);
  EXPECT_EQ(c.seen[0].res, -ETIME);
  EXPECT_GE(MonotonicNanos() - start, 5'000'000);
  EXPECT_EQ(switches, 0) << "the reactor slept instead of polling";
}

TEST(Reactor, WithoutPollingItSleeps) {
  Reactor r({64, "sleep"});
  ASSERT_THAT(r.Init(), IsOk());
  Counter c;
  HandlerId id = r.Register(&c);
  __kernel_timespec ts{0, 5'000'000};
  io_uring_prep_timeout(r.GetSqe(id, 3, 1), &ts, 0, 0);
  const long before = VoluntarySwitchesOfThisThread();
  r.RunOnce(-1);
  ASSERT_EQ(c.seen.size(), 1u);
  EXPECT_GE(VoluntarySwitchesOfThisThread() - before, 1);
}

TEST(Reactor, PollingStopsAfterThePollTimeWhenIdle) {
  Reactor r({64, "poll", /*poll_ns=*/2'000'000});  // 2 ms
  ASSERT_THAT(r.StartThread(), IsOk());
  std::atomic<bool> ran{false};
  r.Post([&] { ran = true; });
  while (!ran.load()) std::this_thread::yield();
  rusage a, b;
  getrusage(RUSAGE_SELF, &a);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  getrusage(RUSAGE_SELF, &b);
  const double cpu =
      (b.ru_utime.tv_sec - a.ru_utime.tv_sec + b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
      (b.ru_utime.tv_usec - a.ru_utime.tv_usec + b.ru_stime.tv_usec - a.ru_stime.tv_usec) / 1e6;
  EXPECT_LT(cpu, 0.1) << "an idle polling reactor kept spinning";
  // And it still wakes for posted work after sleeping.
  ran = false;
  r.Post([&] { ran = true; });
  const int64_t start = MonotonicNanos();
  while (!ran.load() && MonotonicNanos() - start < 2'000'000'000) std::this_thread::yield();
  EXPECT_TRUE(ran.load());
  r.Stop();
  r.Join();
}

TEST(UserData, RoundTrip) {
  const uint64_t v = UserData::Encode(HandlerId{0xABCDEF, 0x1234}, 0x56, 0x789A);
  const UserData d = UserData::Decode(v);
  EXPECT_EQ(d.slot, 0xABCDEFu);
  EXPECT_EQ(d.gen, 0x1234);
  EXPECT_EQ(d.op, 0x56);
  EXPECT_EQ(d.tag, 0x789A);
}

}  // namespace
}  // namespace nvmf_ublk::io
