// The engine's error handling against tools/nvmf-target's fault injection (DESIGN.md §3 "Errors",
// §5 timers, §7): each fault must surface as the right IoResult and retry class, the controller
// must recover (reset + reconnect) exactly where it should, no read may return wrong data as
// success, and every submitted request completes exactly once, across reconnects too.
#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/testing/status_matchers.h"
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
using testing::Completions;
using ::testing::Contains;
using ::testing::HasSubstr;
using testing::HostOptions;
using testing::IoLoad;
using testing::kMs;
using testing::kSec;
using testing::kSubNqn;
using testing::OneNamespaceTarget;
using ::testing::Pair;
using testing::Pattern;
using testing::TargetBytes;
using testing::TestController;

constexpr uint64_t kNsBytes = 8 << 20;
constexpr uint32_t kBlock = 512;

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

class EngineFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartTarget(OneNamespaceTarget(kNsBytes, kBlock));
    auto engine = Engine::Create(2);
    ASSERT_THAT(engine, IsOk());
    engine_ = std::move(*engine);
  }
  void TearDown() override {
    ctrl_.reset();
    engine_.reset();
    target_.reset();
  }
  void StartTarget(target::TargetConfig config) {
    target_ = std::make_unique<target::Target>(std::move(config));
    auto ports = target_->Start();
    ASSERT_THAT(ports, IsOk());
    port_ = (*ports)[0];
  }
  ControllerOptions Options() const { return HostOptions(port_); }
  void Connect(ControllerOptions opts) {
    auto c = TestController::Connect(engine_.get(), std::move(opts));
    ASSERT_THAT(c, IsOk());
    ctrl_ = std::move(*c);
  }

  // Synchronous write of `data` at `lba` on queue `q`.
  IoResult Write(size_t q, uint64_t lba, const std::vector<uint8_t>& data) {
    IoRequest req;
    req.Write(1, lba, static_cast<uint32_t>(data.size() / kBlock), data.data(),
              static_cast<uint32_t>(data.size()), false);
    return ctrl_->Io(q, &req);
  }
  // Synchronous read; a successful read must return exactly what the target holds.
  IoResult Read(size_t q, uint64_t lba, std::vector<uint8_t>* out, uint32_t bytes = 4096) {
    out->assign(bytes, 0xEE);
    IoRequest req;
    req.Read(1, lba, bytes / kBlock, out->data(), bytes);
    const IoResult r = ctrl_->Io(q, &req);
    if (r.ok()) {
      EXPECT_TRUE(*out == TargetBytes(*target_, lba * kBlock, bytes))
          << "a successful read returned data the target does not hold (LBA " << lba << ")";
    }
    return r;
  }
  void ExpectStillLiveWithoutReconnect() {
    EXPECT_EQ(ctrl_->state(), Controller::kLive);
    EXPECT_EQ(ctrl_->reconnects(), 0u);
    EXPECT_EQ(ctrl_->times_live(), 1u);
  }
  // After a recovery: the controller is live again and data written before reads back.
  void ExpectRecovered(uint32_t times_live, uint64_t lba, const std::vector<uint8_t>& data) {
    ASSERT_TRUE(ctrl_->WaitLive(times_live, 10 * kSec))
        << "state " << Controller::ToString(ctrl_->state());
    EXPECT_GE(ctrl_->reconnects(), times_live - 1);
    EXPECT_THAT(ctrl_->history(), Contains(Controller::kResetting));
    std::vector<uint8_t> back;
    const IoResult r = Read(1, lba, &back, static_cast<uint32_t>(data.size()));
    ASSERT_TRUE(r.ok()) << r.ToStatus("Read after reconnect");
    EXPECT_TRUE(back == data);
  }
  void ExpectCleanLoad(const IoLoad& load) {
    EXPECT_EQ(load.verify_failures(), 0u);
    EXPECT_EQ(load.double_completions(), 0u);
    EXPECT_EQ(load.failed(), 0u);
    EXPECT_EQ(load.unaccounted(), 0);
    EXPECT_TRUE(load.TargetHoldsLastWrites(*target_));
  }

  std::unique_ptr<target::Target> target_;
  uint16_t port_ = 0;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<TestController> ctrl_;
};

// --- Connection cut, delay -----------------------------------------------------------------------

TEST_F(EngineFaultTest, ConnectionCutMidIoReconnectsAndLosesNothing) {
  ControllerOptions opts = Options();
  opts.queue_size = 16;
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  IoLoad load(ctrl_.get(), {.slots_per_queue = 8});
  load.Start();
  ASSERT_TRUE(load.WaitVerified(50, 10 * kSec));
  // Every I/O connection is cut when its 41st command arrives (the live ones at once): writes
  // waiting for R2Ts, reads and capsules in flight are all torn down, again after each reconnect.
  ASSERT_THAT(target_->SetFault({.cut_after = 40}), IsOk());
  EXPECT_TRUE(ctrl_->WaitLive(3, 20 * kSec)) << ctrl_->times_live() << " times live";
  target_->ClearFaults();
  const uint64_t verified = load.verified();
  EXPECT_TRUE(load.WaitVerified(verified + 200, 20 * kSec));
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(20 * kSec)) << "requests lost";
  ExpectCleanLoad(load);
  EXPECT_GT(load.reissued(), 0u);
  // Torn-down commands complete with -ECONNABORTED (failover class) and nothing else.
  EXPECT_THAT(load.results(),
              Contains(Pair("err -" + std::to_string(ECONNABORTED), ::testing::Gt(0u))));
  EXPECT_EQ(load.results().size(), 1u) << ::testing::PrintToString(load.results());
  EXPECT_GE(ctrl_->reconnects(), 2u);
  EXPECT_EQ(ctrl_->state(), Controller::kLive);
}

TEST_F(EngineFaultTest, DelayedResponsesWithinTheTimeoutSucceed) {
  ControllerOptions opts = Options();
  opts.io_timeout_ns = 3 * kSec;
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  const std::vector<uint8_t> data = Pattern(16384, 1);
  ASSERT_THAT(target_->SetFault({.delay_ms = 300}), IsOk());
  const int64_t start = MonotonicNanos();
  IoResult w = Write(0, 64, data);
  ASSERT_TRUE(w.ok()) << w.ToStatus("Write");
  std::vector<uint8_t> back;
  IoResult r = Read(1, 64, &back, static_cast<uint32_t>(data.size()));
  ASSERT_TRUE(r.ok()) << r.ToStatus("Read");
  EXPECT_TRUE(back == data);
  EXPECT_GE(Seconds(MonotonicNanos() - start), 0.6);

  IoLoad load(ctrl_.get(), {.slots_per_queue = 8, .first_lba = 1024});
  load.Start();
  EXPECT_TRUE(load.WaitVerified(24, 20 * kSec));
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(20 * kSec));
  ExpectCleanLoad(load);
  EXPECT_EQ(load.reissued(), 0u);
  ExpectStillLiveWithoutReconnect();
}

// --- Dropped responses: Abort, and reset when the Abort does not help ----------------------------

TEST_F(EngineFaultTest, DroppedResponseIsAbortedAfterTheIoTimeout) {
  ControllerOptions opts = Options();
  opts.io_timeout_ns = 1 * kSec;
  opts.abort_timeout_ns = 5 * kSec;
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  ASSERT_THAT(target_->SetFault({.drop_every = 1}), IsOk());
  const int64_t start = MonotonicNanos();
  std::vector<uint8_t> buf;
  const IoResult r = Read(0, 0, &buf);
  const double waited = Seconds(MonotonicNanos() - start);
  // The target completes the held command with "Command Abort Requested": retry, not failover.
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(nvme::CompletionStatus{r.status}.sc(), nvme::kScAbortRequested);
  EXPECT_EQ(r.retry_class(), nvme::RetryClass::kRetry);
  EXPECT_THAT(r.ToStatus("Read"), StatusIs(absl::StatusCode::kAborted));
  EXPECT_GE(waited, 0.9);
  EXPECT_LT(waited, 4.0);
  target_->ClearFaults();
  ASSERT_TRUE(Read(1, 0, &buf).ok());
  ExpectStillLiveWithoutReconnect();
}

TEST_F(EngineFaultTest, DroppedResponseWhoseAbortFailsResetsAndReconnects) {
  ControllerOptions opts = Options();
  opts.io_timeout_ns = 1 * kSec;
  opts.abort_timeout_ns = 1 * kSec;
  opts.kato_s = 0;  // no admin traffic but the Abort
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  const std::vector<uint8_t> data = Pattern(4096, 2);
  ASSERT_TRUE(Write(0, 8, data).ok());
  ASSERT_THAT(target_->SetFault({.drop_every = 1}), IsOk());
  std::vector<uint8_t> buf(4096, 0xEE);
  IoRequest req;
  req.Read(1, 8, 8, buf.data(), 4096);
  req.user = 0;
  Completions done(1);
  req.callback = &done;
  const int64_t start = MonotonicNanos();
  ctrl_->Submit(0, &req);
  // Once the read is held, the next admin command (the Abort) fails without being executed, so
  // the read stays outstanding after its Abort.
  ASSERT_TRUE(
      testing::WaitUntil([&] { return target_->Counters(kSubNqn, 1)->reads == 1; }, 5 * kSec));
  ASSERT_THAT(target_->SetFault({.error_count = 1,
                                 .error_status = nvme::MakeStatus(nvme::kSctCommandSpecific,
                                                                  nvme::kScAbortLimitExceeded,
                                                                  /*dnr=*/true),
                                 .admin = true}),
              IsOk());
  ASSERT_TRUE(done.WaitAll(15 * kSec));
  const double waited = Seconds(done.completed_at_ns(0) - start);
  const IoResult r = done.result(0);
  EXPECT_EQ(r.err, -ECONNABORTED);
  EXPECT_EQ(r.retry_class(), nvme::RetryClass::kFailover);
  EXPECT_THAT(r.ToStatus("Read"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_GE(waited, 1.9);  // io_timeout + abort_timeout
  EXPECT_LT(waited, 5.0);
  // The queue reports its close to the controller after the commands completed.
  EXPECT_TRUE(testing::WaitUntil([&] { return !ctrl_->last_reason().ok(); }, 5 * kSec));
  EXPECT_THAT(ctrl_->last_reason(), StatusIs(absl::StatusCode::kDeadlineExceeded,
                                             HasSubstr("after its timeout and Abort")));
  ExpectRecovered(2, 8, data);
  EXPECT_EQ(done.calls(0), 1);
}

// --- Digest, C2HTermReq, NVMe statuses -----------------------------------------------------------

TEST_F(EngineFaultTest, CorruptDataDigestFailsTheReadButNotTheQueue) {
  ControllerOptions opts = Options();
  opts.hdr_digest = opts.data_digest = true;
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  const std::vector<uint8_t> data = Pattern(65536, 3);
  ASSERT_TRUE(Write(0, 256, data).ok());
  ASSERT_THAT(target_->SetFault({.corrupt_digest = 1}), IsOk());
  std::vector<uint8_t> buf;
  IoResult r = Read(1, 256, &buf, 65536);
  EXPECT_EQ(r.err, -EBADMSG);
  EXPECT_EQ(r.retry_class(), nvme::RetryClass::kFailover);
  EXPECT_THAT(r.ToStatus("Read"), StatusIs(absl::StatusCode::kDataLoss));
  r = Read(1, 256, &buf, 65536);  // budget spent: the retry is good
  ASSERT_TRUE(r.ok()) << r.ToStatus("Read");
  EXPECT_TRUE(buf == data);

  // Under load: every corrupted read is re-issued and then verified; the queues stay up.
  IoLoad load(ctrl_.get(), {.slots_per_queue = 8, .first_lba = 2048});
  load.Start();
  ASSERT_TRUE(load.WaitVerified(20, 10 * kSec));
  ASSERT_THAT(target_->SetFault({.corrupt_digest = 6}), IsOk());
  const uint64_t verified = load.verified();
  EXPECT_TRUE(testing::WaitUntil(
      [&] { return load.results()["err -" + std::to_string(EBADMSG)] == 6; }, 10 * kSec));
  EXPECT_TRUE(load.WaitVerified(verified + 100, 10 * kSec));
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(10 * kSec));
  ExpectCleanLoad(load);
  EXPECT_EQ(load.reissued(), 6u);
  EXPECT_EQ(target_->Stats().term_reqs, 0u);
  ExpectStillLiveWithoutReconnect();
}

TEST_F(EngineFaultTest, C2HTermReqFailsTheQueueAndTheControllerReconnects) {
  ASSERT_NO_FATAL_FAILURE(Connect(Options()));
  const std::vector<uint8_t> data = Pattern(8192, 4);
  ASSERT_TRUE(Write(0, 16, data).ok());
  ASSERT_THAT(target_->SetFault({.term_req = 1}), IsOk());
  std::vector<uint8_t> buf;
  const IoResult r = Read(0, 16, &buf, 8192);
  EXPECT_EQ(r.err, -ECONNABORTED);
  EXPECT_EQ(r.retry_class(), nvme::RetryClass::kFailover);
  EXPECT_EQ(target_->Stats().term_reqs, 1u);
  ExpectRecovered(2, 16, data);
  EXPECT_EQ(ctrl_->reconnects(), 1u);
  EXPECT_THAT(ctrl_->last_reason().message(), HasSubstr("TermReq"));
}

TEST_F(EngineFaultTest, NvmeErrorStatusesSurfaceWithTheirRetryClass) {
  ASSERT_NO_FATAL_FAILURE(Connect(Options()));
  const std::vector<uint8_t> old_data = Pattern(4096, 5), new_data = Pattern(4096, 6);
  ASSERT_TRUE(Write(0, 32, old_data).ok());
  struct Case {
    uint16_t status;
    nvme::RetryClass cls;
    absl::StatusCode code;
  };
  const Case cases[] = {
      // Path related (ANA Inaccessible): try another path.
      {nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaInaccessible), nvme::RetryClass::kFailover,
       absl::StatusCode::kUnavailable},
      {nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaTransition), nvme::RetryClass::kFailover,
       absl::StatusCode::kUnavailable},
      // DNR: never again, even a path error.
      {nvme::MakeStatus(nvme::kSctGeneric, nvme::kScInternalError, /*dnr=*/true),
       nvme::RetryClass::kFail, absl::StatusCode::kInternal},
      {nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaInaccessible, /*dnr=*/true),
       nvme::RetryClass::kFail, absl::StatusCode::kInternal},
      // Command Retry Delay; transient.
      {nvme::MakeStatus(nvme::kSctGeneric, nvme::kScNamespaceNotReady, false, /*crd=*/1),
       nvme::RetryClass::kRetryLater, absl::StatusCode::kAborted},
      {nvme::MakeStatus(nvme::kSctGeneric, nvme::kScAbortSqDeleted), nvme::RetryClass::kRetry,
       absl::StatusCode::kAborted},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(nvme::StatusName(nvme::CompletionStatus{c.status}));
    ASSERT_THAT(target_->SetFault({.error_count = 1, .error_status = c.status}), IsOk());
    const IoResult r = Write(1, 32, new_data);
    EXPECT_EQ(r.err, 0);
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(r.retry_class(), c.cls);
    EXPECT_EQ(r.ToStatus("Write").code(), c.code) << r.ToStatus("Write");
    // The failed write was not executed.
    EXPECT_TRUE(TargetBytes(*target_, 32 * kBlock, 4096) == old_data);
  }
  ASSERT_TRUE(Write(1, 32, new_data).ok());  // budget spent
  std::vector<uint8_t> buf;
  ASSERT_TRUE(Read(0, 32, &buf).ok());
  EXPECT_TRUE(buf == new_data);

  // Under load: path errors are re-issued on the same (live) path and nothing is lost.
  IoLoad load(ctrl_.get(), {.slots_per_queue = 8, .first_lba = 2048});
  load.Start();
  ASSERT_TRUE(load.WaitVerified(20, 10 * kSec));
  ASSERT_THAT(target_->SetFault({.error_count = 10}), IsOk());
  const uint64_t verified = load.verified();
  EXPECT_TRUE(testing::WaitUntil([&] { return load.results()["status 0x302"] == 10; }, 10 * kSec));
  EXPECT_TRUE(load.WaitVerified(verified + 100, 10 * kSec));
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(10 * kSec));
  ExpectCleanLoad(load);
  EXPECT_EQ(load.reissued(), 10u);
  ExpectStillLiveWithoutReconnect();
}

// --- Loss timers ---------------------------------------------------------------------------------

TEST_F(EngineFaultTest, CtrlLossTmoDeletesTheControllerAndFailsParkedIo) {
  ControllerOptions opts = Options();
  opts.ctrl_loss_tmo_s = 2;
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  const int64_t lost = MonotonicNanos();
  target_->Stop();
  ASSERT_TRUE(ctrl_->WaitState(Controller::kResetting, 5 * kSec));
  // Submitted while the controller is away: parked until it is deleted.
  std::vector<uint8_t> buf(4096);
  IoRequest parked;
  parked.Read(1, 0, 8, buf.data(), 4096);
  parked.user = 0;
  Completions done(1);
  parked.callback = &done;
  ctrl_->Submit(0, &parked);
  ASSERT_TRUE(ctrl_->WaitState(Controller::kDeleted, 10 * kSec));
  const double deleted_after = Seconds(MonotonicNanos() - lost);
  EXPECT_GE(deleted_after, 1.5);
  EXPECT_LT(deleted_after, 5.0);
  EXPECT_THAT(ctrl_->last_reason(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("ctrl_loss_tmo")));
  EXPECT_GE(ctrl_->reconnects(), 1u);
  ASSERT_TRUE(done.WaitAll(5 * kSec));
  EXPECT_GE(done.completed_at_ns(0), lost + 1 * kSec);  // it waited for the reconnects
  EXPECT_EQ(done.result(0).err, -ENODEV);
  EXPECT_EQ(done.result(0).retry_class(), nvme::RetryClass::kFail);
  EXPECT_THAT(done.result(0).ToStatus("Read"), StatusIs(absl::StatusCode::kNotFound));
  // Later I/O fails at once.
  IoRequest late;
  late.Read(1, 0, 8, buf.data(), 4096);
  EXPECT_EQ(ctrl_->Io(1, &late).err, -ENODEV);
  EXPECT_EQ(done.calls(0), 1);
}

TEST_F(EngineFaultTest, FastIoFailTmoFailsParkedIoWhileReconnectingGoesOn) {
  ControllerOptions opts = Options();
  opts.fast_io_fail_tmo_s = 1;
  opts.ctrl_loss_tmo_s = -1;
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  const uint16_t port = port_;
  target_->Stop();
  ASSERT_TRUE(ctrl_->WaitState(Controller::kResetting, 5 * kSec));
  const int64_t reset_at = MonotonicNanos();
  std::vector<uint8_t> buf(4096);
  IoRequest parked;
  parked.Read(1, 0, 8, buf.data(), 4096);
  parked.user = 0;
  Completions done(1);
  parked.callback = &done;
  ctrl_->Submit(1, &parked);
  ASSERT_TRUE(done.WaitAll(5 * kSec));
  const double failed_after = Seconds(done.completed_at_ns(0) - reset_at);
  EXPECT_GE(failed_after, 0.8);
  EXPECT_LT(failed_after, 3.0);
  EXPECT_EQ(done.result(0).err, -ENOTCONN);
  EXPECT_EQ(done.result(0).retry_class(), nvme::RetryClass::kFailover);
  EXPECT_THAT(done.result(0).ToStatus("Read"), StatusIs(absl::StatusCode::kUnavailable));
  // New I/O fails at once while the controller keeps trying.
  IoRequest now;
  now.Read(1, 0, 8, buf.data(), 4096);
  const int64_t t = MonotonicNanos();
  EXPECT_EQ(ctrl_->Io(0, &now).err, -ENOTCONN);
  EXPECT_LT(Seconds(MonotonicNanos() - t), 0.5);
  EXPECT_TRUE(testing::WaitUntil([&] { return ctrl_->reconnects() >= 2; }, 10 * kSec));
  EXPECT_NE(ctrl_->state(), Controller::kDeleted);

  // The target comes back on the same port: the controller reconnects and I/O flows again.
  target::TargetConfig config = OneNamespaceTarget(kNsBytes, kBlock);
  config.ports[0].port = port;
  ASSERT_NO_FATAL_FAILURE(StartTarget(config));
  ASSERT_TRUE(ctrl_->WaitLive(2, 10 * kSec));
  const std::vector<uint8_t> data = Pattern(4096, 7);
  ASSERT_TRUE(Write(0, 0, data).ok());
  std::vector<uint8_t> back;
  ASSERT_TRUE(Read(1, 0, &back).ok());
  EXPECT_TRUE(back == data);
  EXPECT_EQ(done.calls(0), 1);
}

// --- Keep-alive ----------------------------------------------------------------------------------

TEST_F(EngineFaultTest, KeepAliveKeepsAControllerWithAShortKatoConnected) {
  ControllerOptions opts = Options();
  // The target drops a controller that sends no admin command for KATO (2 s); the host sends Keep
  // Alive every KATO / 2.
  opts.kato_s = 2;
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  // Idle (no I/O, no admin commands of ours) for more than 2 x KATO.
  EXPECT_FALSE(ctrl_->WaitState(Controller::kResetting, 4500 * kMs));
  EXPECT_EQ(target_->LiveControllers(), 1u);
  ExpectStillLiveWithoutReconnect();
  std::vector<uint8_t> buf;
  EXPECT_TRUE(Read(0, 0, &buf).ok());
}

TEST_F(EngineFaultTest, UnansweredKeepAliveLosesTheAssociationWhichComesBack) {
  ControllerOptions opts = Options();
  opts.kato_s = 1;
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  const std::vector<uint8_t> data = Pattern(4096, 8);
  ASSERT_TRUE(Write(0, 40, data).ok());
  // Keep Alive is received but never answered. One is outstanding at a time (as in Linux), so
  // either side may notice first: the host's Keep Alive timeout, or the target's KATO.
  ASSERT_THAT(target_->SetFault({.drop_every = 1, .admin = true}), IsOk());
  ASSERT_TRUE(ctrl_->WaitState(Controller::kResetting, 5 * kSec));
  target_->ClearFaults();
  const absl::Status why = ctrl_->last_reason();
  EXPECT_TRUE(absl::IsDeadlineExceeded(why) || absl::IsUnavailable(why)) << why;
  ExpectRecovered(2, 40, data);
}

TEST_F(EngineFaultTest, SlowKeepAliveAnswerWhileIoCompletesIsNotADeadController) {
  // A target that restarts its keep-alive timer on any command (TBKAS, as nvmet) and answers
  // Keep Alive 3 s late: past the host's keep-alive timeout (KATO 1 s), while I/O completes.
  target_.reset();
  target::TargetConfig config = OneNamespaceTarget(kNsBytes, kBlock);
  config.tbkas = true;
  ASSERT_NO_FATAL_FAILURE(StartTarget(config));
  ASSERT_THAT(target_->SetFault({.keep_alive_delay_ms = 3000}), IsOk());
  ControllerOptions opts = Options();
  opts.kato_s = 1;
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  // The first Keep Alive goes out while idle (no traffic to stand in for it); then I/O starts.
  const int64_t until = MonotonicNanos() + 5 * kSec;
  while (target_->Stats().keep_alives == 0 && MonotonicNanos() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(target_->Stats().keep_alives, 1u);
  IoLoad load(ctrl_.get(), {.slots_per_queue = 4});
  load.Start();
  EXPECT_FALSE(ctrl_->WaitState(Controller::kResetting, 5 * kSec))
      << "reset: " << ctrl_->last_reason();
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(20 * kSec));
  ExpectCleanLoad(load);
  EXPECT_GT(load.verified(), 0u);
  ExpectStillLiveWithoutReconnect();
}

TEST_F(EngineFaultTest, TrafficBasedKeepAliveSkipsKeepAliveWhileIoFlows) {
  target_.reset();
  target::TargetConfig config = OneNamespaceTarget(kNsBytes, kBlock);
  config.tbkas = true;
  ASSERT_NO_FATAL_FAILURE(StartTarget(config));
  ControllerOptions opts = Options();
  opts.kato_s = 1;
  ASSERT_NO_FATAL_FAILURE(Connect(opts));
  IoLoad load(ctrl_.get(), {.slots_per_queue = 4});
  load.Start();
  ASSERT_TRUE(load.WaitVerified(20, 10 * kSec));
  const uint64_t before = target_->Stats().keep_alives;
  // 3 s = 6 keep-alive periods of I/O: the I/O restarts the target's timer, no Keep Alive needed
  // (at most one, in a period whose I/O the host did not see answered).
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const uint64_t during = target_->Stats().keep_alives - before;
  EXPECT_LE(during, 1u);
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(20 * kSec));
  ExpectCleanLoad(load);
  // Idle again: Keep Alive every KATO / 2.
  const uint64_t idle_start = target_->Stats().keep_alives;
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_GE(target_->Stats().keep_alives - idle_start, 3u);
  ExpectStillLiveWithoutReconnect();
}

}  // namespace
}  // namespace nvmf_ublk::io
