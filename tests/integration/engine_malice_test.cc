// The engine against a hostile controller: tools/nvmf-target commits one deliberate protocol
// violation (FaultConfig::malice) in the middle of write-then-verify traffic, and each row checks
// that the host
//   - detects it and says what it was (the reason the connection closed names the violation),
//   - answers a malformed PDU with an H2CTermReq carrying the right FES (NVMe/TCP 1.0 §3.6.2.3),
//   - tears the connection down, reconnects, and re-issues what was torn down,
//   - never completes a command wrongly: every read verified, every write on the target, each
//     request completed exactly once, none failed,
//   - leaks nothing: the process's fds and threads come back to where they were.
#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/engine.h"
#include "nvme/commands.h"
#include "nvme/log_pages.h"
#include "tests/integration/engine_harness.h"
#include "tools/nvmf-target/target.h"

namespace nvmf_ublk::io {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using target::Malice;
using tcp::Fes;
using ::testing::HasSubstr;
using testing::HostOptions;
using testing::IoLoad;
using testing::kMs;
using testing::kSec;
using testing::OneNamespaceTarget;
using testing::TestController;

struct Row {
  Malice kind;
  std::optional<Fes> fes;  // the H2CTermReq's; nullopt: none is due (no malformed PDU)
  const char* reason;      // in the reason the host gave for closing
  bool header_digest = false;
};

class EngineMaliceTest : public ::testing::TestWithParam<Row> {
 protected:
  void SetUp() override {
    target_ = std::make_unique<target::Target>(OneNamespaceTarget(8 << 20, 512));
    auto ports = target_->Start();
    ASSERT_THAT(ports, IsOk());
    port_ = (*ports)[0];
    auto engine = Engine::Create(2);
    ASSERT_THAT(engine, IsOk());
    engine_ = std::move(*engine);
  }
  void TearDown() override {
    ctrl_.reset();
    engine_.reset();
    target_.reset();
  }
  ControllerOptions Options() const {
    ControllerOptions o = HostOptions(port_);
    o.queue_size = 32;
    o.hdr_digest = GetParam().header_digest;
    o.io_timeout_ns = 1 * kSec;  // the stall rows end through the I/O timeout
    o.abort_timeout_ns = 1 * kSec;
    return o;
  }

  std::unique_ptr<target::Target> target_;
  uint16_t port_ = 0;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<TestController> ctrl_;
};

template <typename P>
std::string KindName(const ::testing::TestParamInfo<P>& p) {
  std::string n = target::ToString(p.param.kind);
  for (char& c : n) {
    if (c == '-') c = '_';
  }
  return n;
}

TEST_P(EngineMaliceTest, DetectedAnsweredAndRecoveredWithoutLoss) {
  const Row& row = GetParam();
  const size_t fds_before = testing::OpenFdCount();
  const size_t threads_before = testing::ThreadCount();
  {
    auto c = TestController::Connect(engine_.get(), Options());
    ASSERT_THAT(c, IsOk());
    ctrl_ = std::move(*c);
  }
  const size_t fds_connected = testing::OpenFdCount();
  IoLoad load(ctrl_.get(), {.slots_per_queue = 4});
  load.Start();
  ASSERT_TRUE(load.WaitVerified(16, 10 * kSec));
  ASSERT_THAT(target_->SetFault({.malice = row.kind}), IsOk());
  EXPECT_TRUE(testing::WaitUntil([&] { return target_->Stats().malice >= 1; }, 10 * kSec))
      << "the target found no command to commit " << target::ToString(row.kind) << " on";
  EXPECT_TRUE(ctrl_->WaitLive(2, 20 * kSec)) << "no reconnect after the violation";
  target_->ClearFaults();
  const uint64_t verified = load.verified();
  EXPECT_TRUE(load.WaitVerified(verified + 32, 20 * kSec));
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(20 * kSec)) << "requests lost";
  EXPECT_EQ(load.verify_failures(), 0u);
  EXPECT_EQ(load.double_completions(), 0u);
  EXPECT_EQ(load.failed(), 0u);
  EXPECT_EQ(load.unaccounted(), 0);
  EXPECT_TRUE(load.TargetHoldsLastWrites(*target_));
  EXPECT_EQ(target_->Stats().malice, 1u);

  EXPECT_THAT(ctrl_->last_reason().message(), HasSubstr(row.reason));
  const target::TransportStats stats = target_->Stats();
  if (row.fes) {
    EXPECT_GE(stats.host_term_reqs, 1u) << "no H2CTermReq reached the target";
    EXPECT_EQ(stats.last_host_fes, static_cast<uint16_t>(*row.fes));
  } else {
    EXPECT_EQ(stats.host_term_reqs, 0u);
  }
  EXPECT_TRUE(testing::WaitUntil(
      [&] {
        target_->ReapFinished();
        return testing::OpenFdCount() == fds_connected;
      },
      5 * kSec))
      << testing::OpenFdCount() << " fds, " << fds_connected << " before the violation";
  ctrl_.reset();
  EXPECT_TRUE(testing::WaitUntil(
      [&] {
        target_->ReapFinished();
        return testing::OpenFdCount() == fds_before && testing::ThreadCount() == threads_before;
      },
      5 * kSec))
      << testing::OpenFdCount() << " fds (" << fds_before << " before), " << testing::ThreadCount()
      << " threads (" << threads_before << ")";
}

INSTANTIATE_TEST_SUITE_P(
    Table, EngineMaliceTest,
    ::testing::Values(
        // PDU lengths that disagree with the type.
        Row{Malice::kRespPlenBelowHlen, Fes::kInvalidHeaderField, "PLEN"},
        Row{Malice::kRespPlenWrong, Fes::kInvalidHeaderField, "PLEN"},
        Row{Malice::kRespHlenWrong, Fes::kInvalidHeaderField, "HLEN"},
        // A PLEN of 4 GiB is a data transfer beyond what the host accepts in one PDU.
        Row{Malice::kC2HPlenHuge, Fes::kR2TLimitExceeded, "data bytes, limit"},
        Row{Malice::kC2HPdoInHeader, Fes::kInvalidHeaderField, "PDO"},
        Row{Malice::kC2HPdoPastPlen, Fes::kInvalidHeaderField, "PDO"},
        Row{Malice::kR2TPlenWrong, Fes::kInvalidHeaderField, "PLEN"},
        Row{Malice::kUnknownPduType, Fes::kInvalidHeaderField, "type"},
        Row{Malice::kHeaderDigestBad, Fes::kHeaderDigestError, "digest", true},
        // Completions for the wrong command, or too early.
        Row{Malice::kCidUnknown, Fes::kInvalidHeaderField, "unknown or completed command ID"},
        Row{Malice::kCidNextGeneration, Fes::kInvalidHeaderField,
            "unknown or completed command ID"},
        Row{Malice::kDuplicateResp, Fes::kInvalidHeaderField, "unknown or completed command ID"},
        Row{Malice::kWriteDoneBeforeR2T, Fes::kPduSequenceError, "R2Ts cover 0 of"},
        Row{Malice::kWriteDoneAfterHalf, Fes::kPduSequenceError, "R2Ts cover"},
        Row{Malice::kReadDoneEarly, Fes::kPduSequenceError, "before it sent all data"},
        // C2HData that does not fit the command.
        Row{Malice::kC2HBeyondLength, Fes::kDataOutOfRange, "beyond the"},
        Row{Malice::kC2HGap, Fes::kPduSequenceError, "out of order"},
        Row{Malice::kC2HOverlap, Fes::kPduSequenceError, "out of order"},
        Row{Malice::kC2HOutOfOrder, Fes::kPduSequenceError, "out of order"},
        Row{Malice::kC2HAfterResp, Fes::kInvalidHeaderField, "unknown or completed command ID"},
        Row{Malice::kC2HOnWrite, Fes::kPduSequenceError, "which reads no data"},
        // R2Ts that do not fit the command.
        Row{Malice::kR2TOnRead, Fes::kPduSequenceError, "which has no data to send"},
        Row{Malice::kR2TBeyondLength, Fes::kDataOutOfRange, "beyond the"},
        Row{Malice::kR2TOverlap, Fes::kPduSequenceError, "R2TO"},
        Row{Malice::kR2TReusedTtag, Fes::kInvalidHeaderField, "TTAG"},
        Row{Malice::kR2TTooMany, Fes::kR2TLimitExceeded, "MAXR2T"},
        // The controller ends it, or goes silent mid-PDU.
        Row{Malice::kTermReqMidData, std::nullopt, "C2HTermReq"},
        Row{Malice::kStallMidPdu, std::nullopt, "timeout"}),
    KindName<Row>);

// Not a violation we refuse: SPDK's target completes reads with C2HData SUCCESS on queues with
// SQ flow control, and the Linux host accepts it. Every read answered that way: data verified, no
// H2CTermReq, no reconnect.
TEST(EngineMaliceTolerance, C2HSuccessWithSqFlowControlIsAcceptedAsTheLinuxHostDoes) {
  target::Target target(OneNamespaceTarget(8 << 20, 512));
  ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
  ASSERT_OK_AND_ASSIGN(auto engine, Engine::Create(2));
  ControllerOptions o = HostOptions(ports[0]);
  o.queue_size = 32;
  ASSERT_THAT(target.SetFault({.malice = Malice::kC2HSuccessWithSqfc, .malice_times = 0}), IsOk());
  ASSERT_OK_AND_ASSIGN(auto ctrl, TestController::Connect(engine.get(), o));
  IoLoad load(ctrl.get(), {.slots_per_queue = 8});
  load.Start();
  ASSERT_TRUE(load.WaitVerified(500, 20 * kSec));  // > 10 x the queue size per queue
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(20 * kSec)) << "requests lost";
  EXPECT_GE(target.Stats().malice, 500u);
  EXPECT_EQ(target.Stats().host_term_reqs, 0u);
  EXPECT_EQ(ctrl->reconnects(), 0u);
  EXPECT_EQ(load.verify_failures(), 0u);
  EXPECT_EQ(load.failed(), 0u);
  EXPECT_EQ(load.unaccounted(), 0);
}

// The same violation again and again (malice-times 3, each after a few commands of a fresh
// connection; one queue with one request in flight, so that each violation has a connection of its
// own): three detections, three H2CTermReqs, three reconnects, and still no request lost, failed,
// completed twice or answered with wrong data.
TEST(EngineMaliceRepeatTest, EveryRepeatIsDetectedAndRecoveredWithoutLoss) {
  target::Target target(OneNamespaceTarget(8 << 20, 512));
  ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
  ASSERT_OK_AND_ASSIGN(auto engine, Engine::Create(2));
  ControllerOptions o = HostOptions(ports[0]);
  o.queue_size = 32;
  o.nr_io_queues = 1;
  ASSERT_OK_AND_ASSIGN(auto ctrl, TestController::Connect(engine.get(), o));
  IoLoad load(ctrl.get(), {.slots_per_queue = 1});
  load.Start();
  ASSERT_TRUE(load.WaitVerified(16, 10 * kSec));
  ASSERT_THAT(
      target.SetFault({.malice = Malice::kCidUnknown, .malice_after = 8, .malice_times = 3}),
      IsOk());
  EXPECT_TRUE(testing::WaitUntil([&] { return target.Stats().malice >= 3; }, 30 * kSec))
      << target.Stats().malice << " of 3 violations committed";
  EXPECT_TRUE(ctrl->WaitLive(4, 30 * kSec)) << "not live again after the third violation";
  const uint64_t verified = load.verified();
  EXPECT_TRUE(load.WaitVerified(verified + 32, 20 * kSec));
  load.Stop();
  ASSERT_TRUE(load.WaitIdle(20 * kSec)) << "requests lost";
  EXPECT_EQ(target.Stats().malice, 3u);
  EXPECT_EQ(target.Stats().host_term_reqs, 3u);
  EXPECT_EQ(target.Stats().last_host_fes, static_cast<uint16_t>(Fes::kInvalidHeaderField));
  EXPECT_EQ(load.verify_failures(), 0u);
  EXPECT_EQ(load.double_completions(), 0u);
  EXPECT_EQ(load.failed(), 0u);
  EXPECT_EQ(load.unaccounted(), 0);
  EXPECT_TRUE(load.TargetHoldsLastWrites(target));
  ctrl.reset();
}

// A bad ICResp: the connect fails with a line naming the field, an H2CTermReq goes out, nothing
// is left behind, and the next connect (the target behaves again) works.
struct IcRow {
  Malice kind;
  const char* reason;
};

class EngineIcRespMaliceTest : public ::testing::TestWithParam<IcRow> {};

TEST_P(EngineIcRespMaliceTest, ConnectFailsClearlyThenWorks) {
  target::Target target(OneNamespaceTarget(1 << 20, 512));
  auto ports = target.Start();
  ASSERT_THAT(ports, IsOk());
  auto engine = Engine::Create(1);
  ASSERT_THAT(engine, IsOk());
  const size_t fds_before = testing::OpenFdCount();
  ASSERT_THAT(target.SetFault({.malice = GetParam().kind}), IsOk());
  ControllerOptions o = HostOptions((*ports)[0]);
  auto c = TestController::Connect(engine->get(), o);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr(GetParam().reason));
  EXPECT_TRUE(testing::WaitUntil([&] { return target.Stats().host_term_reqs == 1; }, 5 * kSec));
  EXPECT_EQ(target.Stats().last_host_fes, static_cast<uint16_t>(Fes::kUnsupportedParameter));
  EXPECT_TRUE(testing::WaitUntil(
      [&] {
        target.ReapFinished();
        return testing::OpenFdCount() == fds_before;
      },
      5 * kSec));
  c = TestController::Connect(engine->get(), o);
  ASSERT_THAT(c, IsOk());
  (*c)->Shutdown();
}

INSTANTIATE_TEST_SUITE_P(
    Table, EngineIcRespMaliceTest,
    ::testing::Values(IcRow{Malice::kIcRespPfv, "PFV 1"}, IcRow{Malice::kIcRespCpda, "CPDA 32"},
                      IcRow{Malice::kIcRespMaxH2CSmall, "MAXH2CDATA 1024"},
                      IcRow{Malice::kIcRespMaxH2CUnaligned, "MAXH2CDATA 4098"}),
    KindName<IcRow>);

// Admin answers out of range (Identify, discovery and ANA logs): the controller comes up, or the
// read fails, with a line naming the field; nothing crashes; a namespace the host cannot map is
// left out while the others of the controller are served, verified with I/O; and a controller
// whose only namespace is refused says so.
class EngineAdminAnswerMaliceTest : public ::testing::Test {
 protected:
  // Subsystem kSubNqn with two 1 MiB RAM namespaces (NSIDs 1 and 2), `kind` set target-wide.
  void StartTarget(Malice kind, uint64_t times = 1) {
    target::TargetConfig c = OneNamespaceTarget(1 << 20, 512);
    c.subsystems[0].namespaces.push_back(c.subsystems[0].namespaces[0]);
    target_ = std::make_unique<target::Target>(c);
    auto ports = target_->Start();
    ASSERT_THAT(ports, IsOk());
    port_ = (*ports)[0];
    auto engine = Engine::Create(1);
    ASSERT_THAT(engine, IsOk());
    engine_ = std::move(*engine);
    ASSERT_THAT(target_->SetFault({.malice = kind, .malice_times = times}), IsOk());
  }
  void TearDown() override {
    engine_.reset();
    target_.reset();
  }
  // A write and a read back of 4 KiB at LBA 8 of `nsid` through I/O queue 0.
  void WriteReadVerify(TestController* c, uint32_t nsid) {
    std::vector<uint8_t> data = testing::Pattern(4096, nsid);
    std::vector<uint8_t> back(4096);
    IoRequest w;
    w.Write(nsid, 8, 8, data.data(), 4096, false);
    EXPECT_TRUE(c->Io(0, &w).ok()) << "write to namespace " << nsid;
    IoRequest r;
    r.Read(nsid, 8, 8, back.data(), 4096);
    EXPECT_TRUE(c->Io(0, &r).ok()) << "read from namespace " << nsid;
    EXPECT_EQ(back, data) << "namespace " << nsid;
  }

  std::unique_ptr<target::Target> target_;
  uint16_t port_ = 0;
  std::unique_ptr<Engine> engine_;
};

// MDTS 0 is legal (no limit): the host's own limit applies, and a 1 MiB transfer goes through.
TEST(EngineAdminAnswerTest, MdtsZeroMeansNoLimit) {
  target::TargetConfig cfg = OneNamespaceTarget(4 << 20, 512);
  cfg.mdts = 0;
  target::Target target(cfg);
  ASSERT_OK_AND_ASSIGN(std::vector<uint16_t> ports, target.Start());
  ASSERT_OK_AND_ASSIGN(auto engine, Engine::Create(1));
  ASSERT_OK_AND_ASSIGN(auto c, TestController::Connect(engine.get(), HostOptions(ports[0])));
  EXPECT_EQ(c->controller()->info().mdts, 0u);
  EXPECT_EQ(c->controller()->max_transfer_bytes(), 0u);
  std::vector<uint8_t> data = testing::Pattern(1 << 20, 9), back(1 << 20);
  IoRequest w;
  w.Write(1, 0, 2048, data.data(), 1 << 20, false);
  ASSERT_TRUE(c->Io(0, &w).ok());
  IoRequest r;
  r.Read(1, 0, 2048, back.data(), 1 << 20);
  ASSERT_TRUE(c->Io(0, &r).ok());
  EXPECT_EQ(back, data);
}

TEST_F(EngineAdminAnswerMaliceTest, NnZeroStillServesTheListedNamespaces) {
  StartTarget(Malice::kIdentifyNn0);
  ASSERT_OK_AND_ASSIGN(auto c, TestController::Connect(engine_.get(), HostOptions(port_)));
  EXPECT_EQ(c->controller()->info().nn, 0u);
  ASSERT_EQ(c->controller()->namespaces().size(), 2u);
  EXPECT_TRUE(c->controller()->refused_namespaces().empty());
  WriteReadVerify(c.get(), 1);
  WriteReadVerify(c.get(), 2);
  EXPECT_EQ(target_->Stats().malice, 1u);
}

TEST_F(EngineAdminAnswerMaliceTest, OutOfRangeNamespaceIsRefusedTheOtherServed) {
  struct Case {
    Malice kind;
    const char* why;
  };
  for (const Case& k : {Case{Malice::kIdentifyLbads40, "LBADS 40: above the supported maximum"},
                        Case{Malice::kIdentifyNsze0, "NSZE 0 (no blocks) with NCAP 2048"}}) {
    SCOPED_TRACE(target::ToString(k.kind));
    StartTarget(k.kind);
    ASSERT_OK_AND_ASSIGN(auto c, TestController::Connect(engine_.get(), HostOptions(port_)));
    // NSID 1 answered out of range: left out with the reason; NSID 2 is served.
    ASSERT_EQ(c->controller()->refused_namespaces().size(), 1u);
    EXPECT_EQ(c->controller()->refused_namespaces()[0].nsid, 1u);
    EXPECT_THAT(c->controller()->refused_namespaces()[0].why.message(), HasSubstr(k.why));
    ASSERT_EQ(c->controller()->namespaces().size(), 1u);
    EXPECT_EQ(c->controller()->namespaces()[0].nsid, 2u);
    WriteReadVerify(c.get(), 2);
    EXPECT_EQ(target_->Stats().malice, 1u);
    c.reset();
    TearDown();
  }
}

TEST_F(EngineAdminAnswerMaliceTest, EveryNamespaceRefusedIsOneClearError) {
  StartTarget(Malice::kIdentifyLbads40, /*times=*/0);
  ASSERT_OK_AND_ASSIGN(auto c, TestController::Connect(engine_.get(), HostOptions(port_)));
  EXPECT_TRUE(c->controller()->namespaces().empty());
  EXPECT_THAT(
      NoUsableNamespaces(testing::kSubNqn, c->controller()->refused_namespaces()),
      StatusIs(absl::StatusCode::kNotFound,
               HasSubstr("has no usable namespaces; namespace 1: Identify Namespace: LBA format 0 "
                         "has LBADS 40: above the supported maximum of 16 (64 KiB); namespace 2: "
                         "Identify Namespace: LBA format 0 has LBADS 40")));
  EXPECT_THAT(NoUsableNamespaces("nqn.x", {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nqn.x has no active namespaces")));
}

TEST_F(EngineAdminAnswerMaliceTest, DiscoveryLogWithMoreRecordsThanThePageIsAClearError) {
  StartTarget(Malice::kDiscoveryNumrecBig, /*times=*/0);
  ControllerOptions o = HostOptions(port_, nvme::kDiscoveryNqn);
  o.discovery = true;
  ASSERT_OK_AND_ASSIGN(auto dc, TestController::Connect(engine_.get(), o));
  auto log = dc->DiscoveryLog();
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(log.status().message(),
              HasSubstr("entry 1 is all zeroes: NUMREC counts more records"));
  EXPECT_GE(target_->Stats().malice, 1u);
  // The controller stays up, and reads the true log once the target behaves.
  target_->ClearFaults();
  ASSERT_OK_AND_ASSIGN(auto entries, dc->DiscoveryLog());
  EXPECT_EQ(entries.size(), 1u);
}

// The ANA log is read at bring-up: a log whose NGRPS counts more groups than it holds fails the
// connect with the parser's reason and the step, and the next connect (target behaving) works.
TEST_F(EngineAdminAnswerMaliceTest, AnaLogWithMoreGroupsThanItHoldsFailsTheConnectClearly) {
  StartTarget(Malice::kAnaNgrpsBig);
  auto c = TestController::Connect(engine_.get(), HostOptions(port_));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status(),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("ANA log: ANA log group descriptor 1 has ANAGRPID 0 (bring-up "
                                 "step read-ana-log)")));
  EXPECT_EQ(target_->Stats().malice, 1u);
  ASSERT_OK_AND_ASSIGN(auto again, TestController::Connect(engine_.get(), HostOptions(port_)));
  EXPECT_EQ(again->controller()->ana_reads(), 1u);
  EXPECT_EQ(again->controller()->ana_cell(1)->state.load(), nvme::kAnaOptimized);
}

}  // namespace
}  // namespace nvmf_ublk::io
