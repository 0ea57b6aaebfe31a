// The engine's data path against tools/nvmf-target in this process, over loopback TCP with real
// io_uring (DESIGN.md §7 "Integration"): every transfer size and path (in-capsule, R2T with many
// H2CData PDUs, several R2Ts per command, CPDA padding) with every digest combination, checked both
// through the engine and in the target's namespace; asynchronous queue-depth traffic with more
// requests than the queue holds; and connect failures that must be clear, quick and leak-free.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "base/testing/status_matchers.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/engine.h"
#include "nvme/status.h"
#include "tests/integration/engine_harness.h"
#include "tools/nvmf-target/target.h"

namespace nvmf_ublk::io {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::AllOf;
using testing::Completions;
using ::testing::HasSubstr;
using testing::HostOptions;
using testing::kSec;
using testing::kSubNqn;
using testing::OneNamespaceTarget;
using testing::Pattern;
using testing::TargetBytes;
using testing::TestController;

constexpr uint64_t kNsBytes = 8 << 20;
constexpr uint32_t kBlock = 512;
constexpr uint32_t kInCapsule = 8192;  // the target's default in-capsule data size

std::unique_ptr<Engine> MakeEngine() {
  auto engine = Engine::Create(2);
  EXPECT_THAT(engine, IsOk());
  return engine.ok() ? std::move(*engine) : nullptr;
}

// --- Round trips ---------------------------------------------------------------------------------

enum class Digests { kNone, kHeader, kData, kBoth };
enum class Transfer {
  kDefault,       // one R2T per write, H2CData up to 128 KiB
  kCpdaSmallH2C,  // CPDA 7 (32-byte data alignment), MAXH2CDATA 4096: many H2CData PDUs
  kManyR2ts,      // R2Ts of 16 KiB, up to 4 outstanding per command
  kEverything,    // all of the above at once (CPDA 3, MAXH2CDATA 4096, 32 KiB R2Ts, 2 outstanding)
};

const char* Name(Digests d) {
  switch (d) {
    case Digests::kNone:
      return "NoDigest";
    case Digests::kHeader:
      return "HeaderDigest";
    case Digests::kData:
      return "DataDigest";
    case Digests::kBoth:
      return "BothDigests";
  }
  return "?";
}

const char* Name(Transfer t) {
  switch (t) {
    case Transfer::kDefault:
      return "Default";
    case Transfer::kCpdaSmallH2C:
      return "CpdaMaxH2CData4K";
    case Transfer::kManyR2ts:
      return "ManyR2ts";
    case Transfer::kEverything:
      return "Everything";
  }
  return "?";
}

target::TransportConfig TransportFor(Transfer t) {
  target::TransportConfig c;
  switch (t) {
    case Transfer::kDefault:
      break;
    case Transfer::kCpdaSmallH2C:
      c.cpda = 7;
      c.maxh2cdata = 4096;
      break;
    case Transfer::kManyR2ts:
      c.r2t_chunk = 16 * 1024;
      c.max_r2t = 4;
      break;
    case Transfer::kEverything:
      c.cpda = 3;
      c.maxh2cdata = 4096;
      c.r2t_chunk = 32 * 1024;
      c.max_r2t = 2;
      break;
  }
  return c;
}

// R2T and H2CData PDUs the target must see for one write of `bytes` that does not fit in-capsule.
void ExpectedR2tPdus(const target::TransportConfig& t, uint32_t bytes, uint64_t* r2ts,
                     uint64_t* h2c) {
  const uint32_t chunk = t.r2t_chunk ? t.r2t_chunk : bytes;
  for (uint32_t off = 0; off < bytes; off += chunk) {
    const uint32_t len = std::min(chunk, bytes - off);
    ++*r2ts;
    *h2c += (len + t.maxh2cdata - 1) / t.maxh2cdata;
  }
}

class RoundTripTest : public ::testing::TestWithParam<std::tuple<Digests, Transfer>> {};

TEST_P(RoundTripTest, EverySizeOnBothQueuesLandsInTheTargetAndReadsBack) {
  const auto [digests, transfer] = GetParam();
  target::TargetConfig config = OneNamespaceTarget(kNsBytes, kBlock);
  config.transport = TransportFor(transfer);
  target::Target target(config);
  ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
  std::unique_ptr<Engine> engine = MakeEngine();
  ASSERT_NE(engine, nullptr);

  ControllerOptions opts = HostOptions(ports[0]);
  opts.hdr_digest = digests == Digests::kHeader || digests == Digests::kBoth;
  opts.data_digest = digests == Digests::kData || digests == Digests::kBoth;
  ASSERT_OK_AND_ASSIGN(auto c, SyncController::Connect(engine.get(), opts));
  ASSERT_EQ(c->controller()->io_queue_count(), 2u);
  ASSERT_EQ(c->controller()->namespaces().size(), 1u);
  const NamespaceEntry& ns = c->controller()->namespaces()[0];
  ASSERT_EQ(ns.info.lba_bytes, kBlock);
  ASSERT_EQ(ns.info.nsze * kBlock, kNsBytes);
  EXPECT_EQ(c->controller()->max_transfer_bytes(), 1u << 20);

  std::vector<uint8_t> shadow = TargetBytes(target, 0, kNsBytes);
  const target::TransportStats before = target.Stats();
  std::mt19937_64 rng(static_cast<uint64_t>(digests) * 16 + static_cast<uint64_t>(transfer));
  uint64_t want_r2ts = 0, want_h2c = 0, fua = 0;
  for (const uint32_t bytes : {512u, 4096u, 8192u, 65536u, 131072u, 1u << 20}) {
    const uint32_t blocks = bytes / kBlock;
    for (size_t q = 0; q < 2; ++q) {
      const uint64_t lba = rng() % (kNsBytes / kBlock - blocks + 1);
      const std::vector<uint8_t> data = Pattern(bytes, rng());
      const bool with_fua = bytes == (1u << 20);
      fua += with_fua;
      IoRequest w;
      w.Write(ns.nsid, lba, blocks, data.data(), bytes, with_fua);
      IoResult r = c->Io(q, &w);
      ASSERT_TRUE(r.ok()) << r.ToStatus("Write") << ": " << bytes << " bytes at LBA " << lba;
      std::copy(data.begin(), data.end(), shadow.begin() + static_cast<ptrdiff_t>(lba * kBlock));
      if (bytes > kInCapsule) ExpectedR2tPdus(config.transport, bytes, &want_r2ts, &want_h2c);

      // Read back on the other queue; the target must hold exactly what was written.
      std::vector<uint8_t> back(bytes, 0xEE);
      IoRequest rd;
      rd.Read(ns.nsid, lba, blocks, back.data(), bytes);
      r = c->Io(1 - q, &rd);
      ASSERT_TRUE(r.ok()) << r.ToStatus("Read") << ": " << bytes << " bytes at LBA " << lba;
      ASSERT_TRUE(back == data) << "read-back of " << bytes << " bytes at LBA " << lba
                                << " differs";
      ASSERT_TRUE(TargetBytes(target, lba * kBlock, bytes) == data)
          << "the target holds other data at LBA " << lba;
    }
  }
  IoRequest flush;
  flush.Flush(ns.nsid);
  ASSERT_TRUE(c->Io(0, &flush).ok());

  // Nothing else changed anywhere in the namespace.
  EXPECT_TRUE(TargetBytes(target, 0, kNsBytes) == shadow);
  ASSERT_OK_AND_ASSIGN(target::NamespaceCounters counters, target.Counters(kSubNqn, 1));
  EXPECT_EQ(counters.writes, 12u);
  EXPECT_EQ(counters.reads, 12u);
  EXPECT_EQ(counters.fua_writes, fua);
  EXPECT_EQ(counters.flushes, 1u);
  const target::TransportStats after = target.Stats();
  // In-capsule writes (<= 8 KiB) take no R2T; the others take exactly the R2Ts and H2CData PDUs
  // the target's R2T size and MAXH2CDATA imply.
  EXPECT_EQ(after.r2ts - before.r2ts, want_r2ts);
  EXPECT_EQ(after.h2c_data - before.h2c_data, want_h2c);
  EXPECT_EQ(after.term_reqs, 0u);
  c->Disconnect();
  EXPECT_EQ(c->state(), Controller::kDeleted);
}

INSTANTIATE_TEST_SUITE_P(
    DigestsAndTransfers, RoundTripTest,
    ::testing::Combine(::testing::Values(Digests::kNone, Digests::kHeader, Digests::kData,
                                         Digests::kBoth),
                       ::testing::Values(Transfer::kDefault, Transfer::kCpdaSmallH2C,
                                         Transfer::kManyR2ts, Transfer::kEverything)),
    [](const ::testing::TestParamInfo<std::tuple<Digests, Transfer>>& p) {
      return std::string(Name(std::get<0>(p.param))) + "_" + Name(std::get<1>(p.param));
    });

// --- Other commands and many requests in flight --------------------------------------------------

class EngineIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_ = std::make_unique<target::Target>(OneNamespaceTarget(kNsBytes, kBlock));
    auto ports = target_->Start();
    ASSERT_THAT(ports, IsOk());
    port_ = (*ports)[0];
    engine_ = MakeEngine();
    ASSERT_NE(engine_, nullptr);
  }
  void TearDown() override {
    engine_.reset();
    target_.reset();
  }

  std::unique_ptr<target::Target> target_;
  uint16_t port_ = 0;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineIntegrationTest, WriteZeroesAndDeallocateClearData) {
  ASSERT_OK_AND_ASSIGN(auto c, SyncController::Connect(engine_.get(), HostOptions(port_)));
  const std::vector<uint8_t> data = Pattern(64 * kBlock, 7);
  IoRequest w;
  w.Write(1, 100, 64, data.data(), static_cast<uint32_t>(data.size()), false);
  ASSERT_TRUE(c->Io(0, &w).ok());

  IoRequest wz;
  wz.WriteZeroes(1, 100, 8, /*deallocate=*/false, /*fua=*/false);
  ASSERT_TRUE(c->Io(1, &wz).ok());
  nvme::DsmRange ranges[2]{};
  ranges[0].nlb.set(8);
  ranges[0].slba.set(120);
  ranges[1].nlb.set(4);
  ranges[1].slba.set(160);
  IoRequest dsm;
  dsm.Deallocate(1, ranges, 2);
  ASSERT_TRUE(c->Io(0, &dsm).ok());

  std::vector<uint8_t> want = data;
  std::fill_n(want.begin(), 8 * kBlock, 0);
  std::fill_n(want.begin() + 20 * kBlock, 8 * kBlock, 0);
  std::fill_n(want.begin() + 60 * kBlock, 4 * kBlock, 0);
  std::vector<uint8_t> back(data.size(), 0xEE);
  IoRequest r;
  r.Read(1, 100, 64, back.data(), static_cast<uint32_t>(back.size()));
  ASSERT_TRUE(c->Io(1, &r).ok());
  EXPECT_TRUE(back == want);
  EXPECT_TRUE(TargetBytes(*target_, 100 * kBlock, data.size()) == want);
  ASSERT_OK_AND_ASSIGN(target::NamespaceCounters counters, target_->Counters(kSubNqn, 1));
  EXPECT_EQ(counters.write_zeroes, 1u);
  EXPECT_EQ(counters.deallocates, 1u);
}

TEST_F(EngineIntegrationTest, ReadPastTheEndIsAnNvmeErrorThatIsNotRetried) {
  ASSERT_OK_AND_ASSIGN(auto c, SyncController::Connect(engine_.get(), HostOptions(port_)));
  std::vector<uint8_t> buf(kBlock);
  IoRequest req;
  req.Read(1, kNsBytes / kBlock, 1, buf.data(), kBlock);
  const IoResult r = c->Io(0, &req);
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(nvme::CompletionStatus{r.status}.sc(), nvme::kScLbaOutOfRange);
  EXPECT_EQ(r.retry_class(), nvme::RetryClass::kFail);
  EXPECT_THAT(r.ToStatus("Read"), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(c->state(), Controller::kLive);
}

TEST_F(EngineIntegrationTest, ManyRequestsInFlightOnEachQueueWaitForRoomAndCompleteOnce) {
  ControllerOptions opts = HostOptions(port_);
  opts.queue_size = 16;  // 15 commands in flight per queue; the rest waits in the queue's list
  ASSERT_OK_AND_ASSIGN(auto c, TestController::Connect(engine_.get(), opts));
  const uint32_t queues = c->controller()->io_queue_count();
  ASSERT_EQ(queues, 2u);
  constexpr size_t kPerQueue = 96;
  constexpr uint32_t kRegionBlocks = 32;  // 16 KiB apart
  const size_t n = kPerQueue * queues;
  std::vector<IoRequest> reqs(n);
  std::vector<std::vector<uint8_t>> data(n), back(n);
  for (size_t k = 0; k < n; ++k) {
    // Every third request needs R2Ts (16 KiB); the others go in-capsule (4 KiB).
    const uint32_t blocks = k % 3 == 0 ? kRegionBlocks : 8;
    data[k] = Pattern(size_t{blocks} * kBlock, 1000 + k);
    back[k].assign(data[k].size(), 0xEE);
  }

  // Submits every request of a queue in one reactor turn; returns the most that had to wait.
  auto run = [&](bool write, Completions* cb) {
    std::atomic<uint32_t> max_waiting{0};
    for (uint32_t q = 0; q < queues; ++q) {
      IoQueue* queue = c->controller()->io_queue(q);
      queue->reactor()->Post([&, q, queue] {
        for (size_t k = q; k < n; k += queues) {
          IoRequest& req = reqs[k];
          const uint32_t blocks = static_cast<uint32_t>(data[k].size() / kBlock);
          if (write) {
            req.Write(1, k * kRegionBlocks, blocks, data[k].data(),
                      static_cast<uint32_t>(data[k].size()), false);
          } else {
            req.Read(1, k * kRegionBlocks, blocks, back[k].data(),
                     static_cast<uint32_t>(back[k].size()));
          }
          req.user = k;
          req.callback = cb;
          queue->Submit(&req);
        }
        max_waiting = std::max(max_waiting.load(), queue->waiting());
      });
    }
    EXPECT_TRUE(cb->WaitAll(30 * kSec));
    return max_waiting.load();
  };

  Completions writes(n);
  const uint32_t waited_w = run(true, &writes);
  Completions reads(n);
  const uint32_t waited_r = run(false, &reads);
  // Give a wrong second completion the chance to arrive before counting.
  for (uint32_t q = 0; q < queues; ++q) {
    Engine::RunOn(c->controller()->io_queue(q)->reactor(), [] { return 0; });
  }
  EXPECT_GE(waited_w, kPerQueue - 15);
  EXPECT_GE(waited_r, kPerQueue - 15);
  for (size_t k = 0; k < n; ++k) {
    ASSERT_EQ(writes.calls(k), 1) << "write " << k;
    ASSERT_EQ(reads.calls(k), 1) << "read " << k;
    ASSERT_TRUE(writes.result(k).ok()) << writes.result(k).ToStatus("Write") << " (" << k << ")";
    ASSERT_TRUE(reads.result(k).ok()) << reads.result(k).ToStatus("Read") << " (" << k << ")";
    ASSERT_TRUE(back[k] == data[k]) << "read " << k << " returned other data";
    ASSERT_TRUE(TargetBytes(*target_, k * kRegionBlocks * kBlock, data[k].size()) == data[k])
        << "the target holds other data for request " << k;
  }
  for (uint32_t q = 0; q < queues; ++q) {
    IoQueue* queue = c->controller()->io_queue(q);
    const auto counts = Engine::RunOn(queue->reactor(), [queue] {
      return std::make_tuple(queue->submitted(), queue->completed(), queue->waiting());
    });
    EXPECT_EQ(std::get<0>(counts), 2 * kPerQueue) << "queue " << q;
    EXPECT_EQ(std::get<1>(counts), 2 * kPerQueue) << "queue " << q;
    EXPECT_EQ(std::get<2>(counts), 0u) << "queue " << q;
  }
}

TEST_F(EngineIntegrationTest, SustainedLoadVerifiesEveryRead) {
  ControllerOptions opts = HostOptions(port_);
  opts.queue_size = 8;
  ASSERT_OK_AND_ASSIGN(auto c, TestController::Connect(engine_.get(), opts));
  testing::IoLoad load(c.get(), {.slots_per_queue = 12});
  load.Start();
  EXPECT_TRUE(load.WaitVerified(1500, 30 * kSec)) << load.verified() << " verified";
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(10 * kSec));
  EXPECT_EQ(load.verify_failures(), 0u);
  EXPECT_EQ(load.double_completions(), 0u);
  EXPECT_EQ(load.failed(), 0u);
  EXPECT_EQ(load.reissued(), 0u);
  EXPECT_EQ(load.unaccounted(), 0);
  EXPECT_TRUE(load.results().empty());
  EXPECT_TRUE(load.TargetHoldsLastWrites(*target_));
  EXPECT_EQ(c->reconnects(), 0u);
}

// --- Connect failures: clear, within the connect timeout, nothing leaked -------------------------

class ConnectErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = MakeEngine();
    ASSERT_NE(engine_, nullptr);
    fds_ = testing::OpenFdCount();
    threads_ = testing::ThreadCount();
  }
  // Every failed attempt must leave no socket and no thread behind (targets are stopped first).
  void ExpectNothingLeaked() {
    EXPECT_EQ(testing::OpenFdCount(), fds_);
    EXPECT_EQ(testing::ThreadCount(), threads_);
  }
  absl::Status TryConnect(ControllerOptions opts, double* seconds) {
    const int64_t start = MonotonicNanos();
    auto c = SyncController::Connect(engine_.get(), std::move(opts));
    *seconds = static_cast<double>(MonotonicNanos() - start) / 1e9;
    return c.ok() ? absl::OkStatus() : c.status();
  }

  std::unique_ptr<Engine> engine_;
  size_t fds_ = 0, threads_ = 0;
};

// A listening socket on 127.0.0.1 whose accept queue is full: further SYNs are dropped, so a
// connect hangs like one to an unreachable address (reliable here, unlike a real black hole).
struct BlackHole {
  UniqueFd listener;
  std::vector<UniqueFd> fillers;
  uint16_t port = 0;
  // `fill` false: an ordinary listener that nobody accepts on yet.
  explicit BlackHole(bool fill = true) {
    listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(listener.get(), 0), 0);
    socklen_t len = sizeof(a);
    getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    for (int i = 0; fill && i < 3; ++i) {
      UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      (void)::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
      fillers.push_back(std::move(s));
    }
    // Let the fillers' handshakes settle.
    if (fill) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
};

TEST_F(ConnectErrorTest, UnreachableAddressTimesOutWithinTheConnectTimeout) {
  {
    BlackHole hole;
    ControllerOptions opts = HostOptions(hole.port);
    opts.connect_timeout_ns = 1 * kSec;
    double seconds = 0;
    const absl::Status s = TryConnect(opts, &seconds);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("timed out")));
    EXPECT_GE(seconds, 0.9);
    EXPECT_LT(seconds, 1.6);
  }
  ExpectNothingLeaked();
}

TEST_F(ConnectErrorTest, RefusedPortIsUnavailable) {
  uint16_t port;
  {
    BlackHole closed(/*fill=*/false);  // bound, then closed: nothing listens there any more
    port = closed.port;
  }
  double seconds = 0;
  EXPECT_THAT(TryConnect(HostOptions(port), &seconds),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Connection refused")));
  EXPECT_LT(seconds, 1.0);
  ExpectNothingLeaked();
}

TEST_F(ConnectErrorTest, WrongSubsystemNqnIsInvalidArgument) {
  {
    target::Target target(OneNamespaceTarget(1 << 20));
    ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
    double seconds = 0;
    EXPECT_THAT(TryConnect(HostOptions(ports[0], "nqn.2026-01.io.nvmf-ublk:nope"), &seconds),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("Connect Invalid Parameters"),
                               HasSubstr("(bring-up step admin-connect)"))));
    EXPECT_LT(seconds, 2.0);
    EXPECT_EQ(target.LiveControllers(), 0u);
  }
  ExpectNothingLeaked();
}

// Bring-up is a sequence of named steps, each logged as "bring-up OLD -> NEW" at debug level,
// so a log shows where a connect stopped; a live controller has finished them all.
TEST_F(ConnectErrorTest, BringUpStepsAreLoggedInOrder) {
  {
    target::Target target(OneNamespaceTarget(1 << 20));
    ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
    std::mutex mu;
    std::vector<std::string> steps;
    const LogLevel level = MinLogLevel();
    SetMinLogLevel(LogLevel::kDebug);
    {
      ScopedLogSink sink([&](LogLevel, std::string_view line) {
        const size_t at = line.find(": bring-up ");
        if (at == std::string_view::npos) return;
        std::lock_guard<std::mutex> lock(mu);
        steps.emplace_back(line.substr(at + 11));
      });
      ASSERT_OK_AND_ASSIGN(auto engine, Engine::Create(1));
      ASSERT_OK_AND_ASSIGN(auto c, TestController::Connect(engine.get(), HostOptions(ports[0])));
      EXPECT_EQ(c->controller()->bring_up_step(), Controller::BringUpStep::kDone);
    }
    SetMinLogLevel(level);
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_THAT(
        steps, ::testing::ElementsAre(
                   "idle -> admin-connect", "admin-connect -> read-cap", "read-cap -> read-version",
                   "read-version -> enable", "enable -> wait-ready",
                   "wait-ready -> identify-controller", "identify-controller -> set-queue-count",
                   "set-queue-count -> configure-events", "configure-events -> list-namespaces",
                   "list-namespaces -> identify-namespace", "identify-namespace -> read-ana-log",
                   "read-ana-log -> connect-io-queues", "connect-io-queues -> done",
                   // The orderly shutdown at the end.
                   "done -> idle"))
        << ::testing::PrintToString(steps);
  }
  ExpectNothingLeaked();
}

// A target input that used to reach an NCHECK (queue size 1) and abort the whole daemon: refused
// with a clear error instead; the process lives on.
// A controller that never sets CSTS.RDY: the host polls until CAP.TO (here 500 ms) and then fails
// the connect with a clear reason at the wait-ready step.
TEST_F(ConnectErrorTest, NeverReadyFailsAfterCapTimeout) {
  {
    target::TargetConfig config = OneNamespaceTarget(1 << 20);
    config.never_ready = true;
    config.cap_override = uint64_t{127} | (1ull << 16) | (1ull << 24) | (1ull << 37);  // TO 1
    target::Target target(config);
    ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
    double seconds = 0;
    EXPECT_THAT(TryConnect(HostOptions(ports[0]), &seconds),
                StatusIs(absl::StatusCode::kDeadlineExceeded,
                         AllOf(HasSubstr("did not become ready (CSTS.RDY) within CAP.TO = 500 ms"),
                               HasSubstr("(bring-up step wait-ready)"))));
    EXPECT_GE(seconds, 0.5);
    EXPECT_LT(seconds, 3.0);
  }
  ExpectNothingLeaked();
}

// A controller destroyed while its bring-up polls CSTS.RDY (every 10 ms): the poll timer captures
// `this` and must be cancelled by the destructor, or it fires on freed memory (ASan reports it).
TEST_F(ConnectErrorTest, DestroyedWhilePollingReadyLeavesNoTimerBehind) {
  {
    target::TargetConfig config = OneNamespaceTarget(1 << 20);
    config.never_ready = true;  // CAP.TO 7.5 s: the poll runs all through the test
    target::Target target(config);
    ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
    struct Listener : ControllerListener {
      void OnControllerState(Controller*, int, const absl::Status&) override {}
    } listener;
    std::unique_ptr<Controller> ctrl;
    ASSERT_THAT(Engine::RunOn(engine_->control(),
                              [&] {
                                ctrl = std::make_unique<Controller>(
                                    HostOptions(ports[0]), engine_->control(),
                                    engine_->io_reactors(), &listener);
                                return ctrl->Start();
                              }),
                IsOk());
    // Until the host polls CSTS: bring-up at wait-ready.
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
          return Engine::RunOn(engine_->control(), [&] {
            return ctrl->bring_up_step() == Controller::BringUpStep::kWaitReady;
          });
        },
        5 * kSec));
    Engine::RunOn(engine_->control(), [&] {
      ctrl.reset();
      return 0;
    });
    // Several poll periods: a timer left behind would have fired by now.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Engine::RunOn(engine_->control(), [] { return 0; });
  }
  ExpectNothingLeaked();
}

TEST_F(ConnectErrorTest, CapMqesZeroIsRefusedClearly) {
  {
    target::TargetConfig config = OneNamespaceTarget(1 << 20);
    config.cap_override = uint64_t{0} | (1ull << 16) | (15ull << 24) | (1ull << 37);  // MQES 0
    target::Target target(config);
    ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
    double seconds = 0;
    EXPECT_THAT(TryConnect(HostOptions(ports[0]), &seconds),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         AllOf(HasSubstr("CAP.MQES 0"), HasSubstr("(bring-up step read-cap)"))));
    EXPECT_LT(seconds, 2.0);
  }
  ExpectNothingLeaked();
}

TEST_F(ConnectErrorTest, HostNotAllowedIsPermissionDenied) {
  {
    target::TargetConfig config = OneNamespaceTarget(1 << 20);
    config.subsystems[0].allowed_hosts = {"nqn.2014-08.org.nvmexpress:uuid:someone-else"};
    target::Target target(config);
    ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
    double seconds = 0;
    EXPECT_THAT(TryConnect(HostOptions(ports[0]), &seconds),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("Connect Invalid Host")));
    EXPECT_LT(seconds, 2.0);
  }
  ExpectNothingLeaked();
}

TEST_F(ConnectErrorTest, DiscoveryNqnWithoutDiscoveryIsInvalidArgument) {
  {
    target::Target target(OneNamespaceTarget(1 << 20));
    ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
    double seconds = 0;
    EXPECT_THAT(TryConnect(HostOptions(ports[0], nvme::kDiscoveryNqn), &seconds),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("discovery controller"),
                               HasSubstr("(bring-up step identify-controller)"))));
  }
  ExpectNothingLeaked();
}

TEST_F(ConnectErrorTest, TargetClosingDuringIcReqIsUnavailable) {
  {
    BlackHole peer(/*fill=*/false);  // accepts once, reads the ICReq, closes
    std::thread closer([&] {
      UniqueFd conn(::accept4(peer.listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      uint8_t buf[128];
      size_t got = 0;
      while (got < sizeof(buf)) {
        const ssize_t r = ::recv(conn.get(), buf + got, sizeof(buf) - got, 0);
        if (r <= 0) break;
        got += static_cast<size_t>(r);
      }
      EXPECT_EQ(got, sizeof(buf));  // a whole ICReq
      EXPECT_EQ(buf[0], 0x00);      // PDU type ICReq
    });
    double seconds = 0;
    EXPECT_THAT(TryConnect(HostOptions(peer.port), &seconds),
                StatusIs(absl::StatusCode::kUnavailable, HasSubstr("connection closed")));
    EXPECT_LT(seconds, 2.0);
    closer.join();
  }
  ExpectNothingLeaked();
}

TEST_F(ConnectErrorTest, RepeatedFailuresLeakNothing) {
  {
    target::Target target(OneNamespaceTarget(1 << 20));
    ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
    for (int i = 0; i < 20; ++i) {
      double seconds = 0;
      EXPECT_FALSE(
          TryConnect(HostOptions(ports[0], "nqn.2026-01.io.nvmf-ublk:nope"), &seconds).ok());
    }
    // And a good one afterwards still works.
    ASSERT_OK_AND_ASSIGN(auto c, SyncController::Connect(engine_.get(), HostOptions(ports[0])));
    c.reset();
  }
  ExpectNothingLeaked();
}

}  // namespace
}  // namespace nvmf_ublk::io
