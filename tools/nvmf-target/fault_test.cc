// Fault injection of the target: each fault has an observable effect on a host.
#include <chrono>

#include "base/clock.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "target.h"
#include "testing/test_host.h"

namespace nvmf_ublk::target {
namespace {

using ::nvmf_ublk::testing::IsOk;
using testing::Completion;
using testing::ConnectSession;
using ::testing::HasSubstr;
using testing::Pattern;
using testing::QueueOptions;
using testing::Session;
using testing::TestQueue;

constexpr char kNqn[] = "nqn.2026-01.io.nvmf-ublk:faults";

TargetConfig Config(int ports = 1) {
  TargetConfig c;
  for (int i = 0; i < ports; ++i) c.ports.push_back(PortConfig{});
  SubsystemConfig s;
  s.nqn = kNqn;
  NamespaceConfig ns;
  ns.size_bytes = 4 << 20;
  s.namespaces = {ns};
  c.subsystems.push_back(s);
  return c;
}

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(Config()); }
  void Start(TargetConfig config) {
    target_.reset();
    target_ = std::make_unique<Target>(std::move(config));
    auto ports = target_->Start();
    ASSERT_THAT(ports, IsOk());
    ports_ = *ports;
  }
  Session Connect(tcp::HostQueueOptions io = {}, size_t port = 0) {
    auto s = ConnectSession(ports_[port], kNqn, 1, io);
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : Session{};
  }
  absl::StatusOr<Completion> Read(TestQueue& q, std::vector<uint8_t>& buf, uint64_t lba = 0,
                                  int timeout_ms = 5000) {
    buf.assign(4096, 0);
    return q.Run(nvme::BuildRead(1, lba, 8), buf.data(), 4096, timeout_ms);
  }

  std::unique_ptr<Target> target_;
  std::vector<uint16_t> ports_;
};

TEST_F(FaultTest, CutAfterClosesTheConnectionOnTheNextCommand) {
  ASSERT_THAT(target_->SetFault(FaultConfig{.cut_after = 3}), IsOk());
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  std::vector<uint8_t> buf;
  for (int i = 0; i < 3; ++i) {
    auto c = Read(s.io0(), buf);
    ASSERT_THAT(c, IsOk());
    EXPECT_TRUE(c->ok());
  }
  auto c = Read(s.io0(), buf);
  EXPECT_FALSE(c.ok() && c->ok());
  EXPECT_TRUE(s.io0().WaitClosed(2000));
  EXPECT_FALSE(s.admin->closed());  // admin commands are not counted unless admin=1
  EXPECT_TRUE(s.admin->Run(nvme::BuildKeepAlive()).ok());
}

TEST_F(FaultTest, DelayHoldsResponses) {
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  ASSERT_THAT(target_->SetFault(FaultConfig{.delay_ms = 200}), IsOk());
  std::vector<uint8_t> data = Pattern(4096, 1), buf;
  const int64_t start = MonotonicNanos();
  auto w = s.io0().Run(nvme::BuildWrite(1, 0, 8, false), data.data(), 4096);
  auto r = Read(s.io0(), buf);
  const int64_t elapsed_ms = (MonotonicNanos() - start) / 1'000'000;
  ASSERT_THAT(w, IsOk());
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(w->ok() && r->ok());
  EXPECT_EQ(buf, data);
  EXPECT_GE(elapsed_ms, 400);
  // Admin commands are not delayed by default.
  const int64_t t = MonotonicNanos();
  EXPECT_TRUE(s.admin->Run(nvme::BuildKeepAlive()).ok());
  EXPECT_LT((MonotonicNanos() - t) / 1'000'000, 150);
}

TEST_F(FaultTest, DroppedCommandNeverCompletesUntilAborted) {
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  ASSERT_THAT(target_->SetFault(FaultConfig{.drop_every = 2}), IsOk());
  std::vector<uint8_t> a(4096), b(4096);
  auto first = s.io0().Run(nvme::BuildRead(1, 0, 8), a.data(), 4096);
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE(first->ok());
  auto second = s.io0().Submit(nvme::BuildRead(1, 8, 8), b.data(), 4096);
  ASSERT_THAT(second, IsOk());
  const uint16_t cid = s.io0().last_cid();
  EXPECT_THAT(s.io0().Wait(*second, 300),
              ::nvmf_ublk::testing::StatusIs(absl::StatusCode::kDeadlineExceeded));
  Completion abort = *s.admin->Run(nvme::BuildAbort(1, cid));
  EXPECT_TRUE(abort.ok());
  EXPECT_TRUE(nvme::AbortSucceeded(abort.cqe));
  auto aborted = s.io0().Wait(*second, 2000);
  ASSERT_THAT(aborted, IsOk());
  EXPECT_EQ(aborted->sc(), nvme::kScAbortRequested);
  // Aborting it again: nothing held any more.
  abort = *s.admin->Run(nvme::BuildAbort(1, cid));
  EXPECT_FALSE(nvme::AbortSucceeded(abort.cqe));
}

TEST_F(FaultTest, CorruptDigestFailsOneRead) {
  tcp::HostQueueOptions io = QueueOptions(kNqn);
  io.data_digest = true;
  Session s = Connect(io);
  ASSERT_TRUE(s.admin);
  ASSERT_THAT(target_->SetFault(FaultConfig{.corrupt_digest = 1}), IsOk());
  std::vector<uint8_t> buf;
  auto bad = Read(s.io0(), buf);
  ASSERT_THAT(bad, IsOk());
  EXPECT_EQ(bad->error, -EBADMSG);
  auto good = Read(s.io0(), buf);
  ASSERT_THAT(good, IsOk());
  EXPECT_TRUE(good->ok());
}

TEST_F(FaultTest, TermReqInsteadOfAResponse) {
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  ASSERT_THAT(target_->SetFault(FaultConfig{.term_req = 1}), IsOk());
  std::vector<uint8_t> buf;
  auto c = Read(s.io0(), buf);
  EXPECT_FALSE(c.ok() && c->ok());
  EXPECT_TRUE(s.io0().WaitClosed(2000));
  EXPECT_THAT(s.io0().failure().message(), HasSubstr("C2HTermReq"));
  EXPECT_EQ(target_->Stats().term_reqs, 1u);
}

TEST_F(FaultTest, ErrorStatusForTheNextCommands) {
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  ASSERT_THAT(target_->SetFault(FaultConfig{.error_count = 2}), IsOk());
  std::vector<uint8_t> buf;
  for (int i = 0; i < 2; ++i) {
    auto c = Read(s.io0(), buf);
    ASSERT_THAT(c, IsOk());
    EXPECT_EQ(c->sct(), nvme::kSctPath);
    EXPECT_EQ(c->sc(), nvme::kScAnaInaccessible);
  }
  auto c = Read(s.io0(), buf);
  EXPECT_TRUE(c->ok());
  ASSERT_THAT(target_->SetFault(FaultConfig{.error_count = 1,
                                            .error_status = nvme::MakeStatus(
                                                nvme::kSctGeneric, nvme::kScInternalError, true)}),
              IsOk());
  std::vector<uint8_t> data = Pattern(4096, 2);
  c = s.io0().Run(nvme::BuildWrite(1, 0, 8, false), data.data(), 4096);
  ASSERT_THAT(c, IsOk());
  EXPECT_TRUE(c->dnr());
  EXPECT_EQ(c->sc(), nvme::kScInternalError);
  EXPECT_EQ(target_->Counters(kNqn, 1)->writes, 0u);
}

TEST_F(FaultTest, TransportOverridesApplyToNewConnections) {
  FaultConfig f;
  f.cpda = 2;
  f.maxh2cdata = 4096;
  f.r2t_chunk = 16 * 1024;
  f.max_r2t = 2;
  ASSERT_THAT(target_->SetFault(f), IsOk());
  tcp::HostQueueOptions io = QueueOptions(kNqn);
  io.in_capsule_data = 0;
  io.maxr2t = 8;
  Session s = Connect(io);
  ASSERT_TRUE(s.admin);
  EXPECT_EQ(s.io0().queue().negotiated().cpda_bytes, 12u);
  EXPECT_EQ(s.io0().queue().negotiated().maxh2cdata, 4096u);
  const TransportStats before = target_->Stats();
  std::vector<uint8_t> data = Pattern(64 * 1024, 3), back(64 * 1024);
  auto w = s.io0().Run(nvme::BuildWrite(1, 0, 128, false), data.data(), 64 * 1024);
  ASSERT_THAT(w, IsOk());
  EXPECT_TRUE(w->ok());
  EXPECT_EQ(target_->Stats().r2ts, before.r2ts + 4);
  EXPECT_EQ(target_->Stats().h2c_data, before.h2c_data + 16);
  auto r = s.io0().Run(nvme::BuildRead(1, 0, 128), back.data(), 64 * 1024);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(back, data);
}

TEST_F(FaultTest, PortFaultsOnlyHitThatPort) {
  Start(Config(2));
  ASSERT_THAT(target_->SetFault(FaultConfig{.error_count = 100}, 1), IsOk());
  Session on0 = Connect({}, 0), on1 = Connect({}, 1);
  ASSERT_TRUE(on0.admin && on1.admin);
  std::vector<uint8_t> buf;
  EXPECT_TRUE(Read(on0.io0(), buf)->ok());
  EXPECT_EQ(Read(on1.io0(), buf)->sc(), nvme::kScAnaInaccessible);
  target_->ClearFaults();
  EXPECT_TRUE(Read(on1.io0(), buf)->ok());
  EXPECT_FALSE(target_->SetFault(FaultConfig{.delay_ms = 1}, 5).ok());
}

TEST_F(FaultTest, AdminFaultsDelayKeepAlive) {
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  ASSERT_THAT(target_->SetFault(FaultConfig{.delay_ms = 150, .admin = true}), IsOk());
  const int64_t t = MonotonicNanos();
  EXPECT_TRUE(s.admin->Run(nvme::BuildKeepAlive())->ok());
  EXPECT_GE((MonotonicNanos() - t) / 1'000'000, 150);
}

TEST_F(FaultTest, InvalidFaultsAreRejected) {
  FaultConfig f;
  f.maxh2cdata = 100;
  EXPECT_FALSE(target_->SetFault(f).ok());
  f = FaultConfig{};
  f.cpda = 40;
  EXPECT_FALSE(target_->SetFault(f).ok());
}

}  // namespace
}  // namespace nvmf_ublk::target
