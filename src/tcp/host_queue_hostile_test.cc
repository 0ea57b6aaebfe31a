// What a broken or malicious controller may send a host queue: each answer fails the queue with
// the H2CTermReq the spec names and completes nothing, so the owner re-issues the commands.
#include <cerrno>
#include <functional>
#include <vector>

#include "absl/strings/str_format.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/commands.h"
#include "nvme/spec.h"
#include "tcp/host_queue.h"
#include "tcp/testing/fake_controller.h"
#include "tcp/testing/host_queue_testing.h"

namespace nvmf_ublk::tcp {
namespace {

using ::nvmf_ublk::tcp::testing::FakeController;
using ::nvmf_ublk::tcp::testing::HostQueueTest;
using ::nvmf_ublk::tcp::testing::Observer;
using ::nvmf_ublk::tcp::testing::Opts;
using ::nvmf_ublk::tcp::testing::Pattern;
using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

struct IcRespCase {
  const char* name;
  uint32_t maxh2cdata;
  uint8_t dgst;
  uint16_t pfv;
  uint32_t fei;
  const char* message;
};

class IcRespRejectTest : public HostQueueTest, public ::testing::WithParamInterface<IcRespCase> {};

TEST_P(IcRespRejectTest, FailsWithTermReq) {
  const IcRespCase& c = GetParam();
  HostQueue q(Opts(), &obs);
  ASSERT_THAT(q.Start(), IsOk());
  ctrl.Pump(q);
  ctrl.IcResp(c.maxh2cdata, c.dgst, c.pfv);
  ctrl.Deliver(q);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  EXPECT_EQ(obs.failures, 1);
  EXPECT_THAT(obs.failure, StatusIs(absl::StatusCode::kDataLoss, HasSubstr(c.message)));
  ctrl.Pump(q);
  ASSERT_TRUE(ctrl.termreq.has_value());
  EXPECT_EQ(ctrl.termreq->fes.get(), static_cast<uint16_t>(Fes::kUnsupportedParameter));
  EXPECT_EQ(ctrl.termreq->fei.get(), c.fei);
  ASSERT_GE(ctrl.termreq_data.size(), 16u);
  EXPECT_EQ(ctrl.termreq_data[0], static_cast<uint8_t>(PduType::kIcResp));
}

INSTANTIATE_TEST_SUITE_P(
    Table, IcRespRejectTest,
    ::testing::Values(IcRespCase{"maxh2cdata_small", 1024, 0, 0, 12, "MAXH2CDATA 1024"},
                      IcRespCase{"maxh2cdata_unaligned", 4098, 0, 0, 12, "MAXH2CDATA 4098"},
                      IcRespCase{"digest_not_requested", 65536, kDgstData, 0, 11,
                                 "data on; requested header off, data off"},
                      IcRespCase{"pfv", 65536, 0, 1, 8, "PFV 1"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST_F(HostQueueTest, SuccessfulReadBeforeAllDataIsAProtocolError) {
  HostQueue q(Opts(1), &obs);
  Connect(q);
  std::vector<uint8_t> buf(4096);
  const int cid = q.Submit(nvme::BuildRead(1, 0, 8), buf.data(), 4096, 1);
  ctrl.Pump(q);
  ctrl.C2H(cid, 0, Pattern(1024, 1));
  ctrl.Resp(cid);
  ctrl.Deliver(q);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  EXPECT_THAT(obs.failure.message(),
              HasSubstr(absl::StrFormat("successful completion of Read (CID 0x%04x) before it "
                                        "sent all data (1024 of 4096 bytes)",
                                        cid)));
  EXPECT_TRUE(obs.done.empty());  // not "done": its owner re-issues it after the teardown
  ctrl.Pump(q);
  ASSERT_TRUE(ctrl.termreq.has_value());
  EXPECT_EQ(ctrl.termreq->fes.get(), static_cast<uint16_t>(Fes::kPduSequenceError));
  EXPECT_EQ(ctrl.termreq->fei.get(), 20u);
  q.FailOutstanding(-ECONNABORTED);
  ASSERT_EQ(obs.done.count(1), 1u);
  EXPECT_EQ(obs.done[1].error, -ECONNABORTED);
}

struct BadR2T {
  const char* name;
  bool read;  // target a read command instead of a write
  uint32_t offset, len;
  int extra;  // extra R2Ts beyond the first
  Fes fes;
  const char* message;
};

class R2TRejectTest : public HostQueueTest, public ::testing::WithParamInterface<BadR2T> {};

TEST_P(R2TRejectTest, FailsTheQueue) {
  const BadR2T& c = GetParam();
  HostQueueOptions o = Opts(1);
  o.in_capsule_data = 0;
  o.maxr2t = 1;
  HostQueue q(o, &obs);
  Connect(q, /*maxh2cdata=*/4096);
  std::vector<uint8_t> buf(16384);
  const int cid = q.Submit(c.read ? nvme::BuildRead(1, 0, 32) : nvme::BuildWrite(1, 0, 32, false),
                           buf.data(), 16384, 1);
  ctrl.Pump(q);
  // An R2T counts against MAXR2T until all its data is queued; with MAXH2CDATA 4096 an 8 KiB R2T
  // stays pending while its first H2CData PDU is unsent.
  if (c.extra) ctrl.R2T(cid, 1, 0, 8192);
  ctrl.R2T(cid, 2, c.offset, c.len);
  ctrl.Deliver(q);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  EXPECT_THAT(obs.failure.message(), HasSubstr(c.message));
  ctrl.Pump(q);
  ASSERT_TRUE(ctrl.termreq.has_value());
  EXPECT_EQ(ctrl.termreq->fes.get(), static_cast<uint16_t>(c.fes));
  // Outstanding commands complete exactly once when the transport tears down.
  EXPECT_TRUE(obs.done.empty());
  q.FailOutstanding(-ECONNABORTED);
  ASSERT_EQ(obs.done.count(1), 1u);
  EXPECT_EQ(obs.done[1].error, -ECONNABORTED);
  q.FailOutstanding(-ECONNABORTED);
  EXPECT_EQ(obs.done.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Table, R2TRejectTest,
    ::testing::Values(BadR2T{"read", true, 0, 4096, 0, Fes::kPduSequenceError, "no data to send"},
                      BadR2T{"beyond", false, 4096, 16384, 0, Fes::kDataOutOfRange,
                             "beyond the 16384-byte"},
                      BadR2T{"gap", false, 4096, 1024, 0, Fes::kPduSequenceError, "expected 0"},
                      BadR2T{"zero", false, 0, 0, 0, Fes::kInvalidHeaderField, "R2TL is 0"},
                      BadR2T{"limit", false, 8192, 4096, 1, Fes::kR2TLimitExceeded, "MAXR2T"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST_F(HostQueueTest, R2TsCountUntilTheirDataIsWritten) {
  struct Case {
    const char* name;
    uint32_t maxr2t;
    uint16_t second_ttag;
    bool write_first;     // the transport reports the first R2T's data written before the second
    const char* message;  // empty: accepted
  };
  const Case cases[] = {
      {"TTAG reused while outstanding", 2, 1, false, "TTAG 0x0001 reused"},
      {"TTAG reused after its data was written", 2, 1, true, ""},
      // A second R2T while the first one's data (fully queued) is unwritten.
      {"second R2T before the first one's data is written", 1, 2, false, "MAXR2T"},
      {"second R2T after", 1, 2, true, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeController fc;
    Observer ob;
    HostQueueOptions o = Opts(1);
    o.in_capsule_data = 0;
    o.maxr2t = c.maxr2t;
    HostQueue q(o, &ob);
    ASSERT_THAT(fc.BringUp(q), IsOk()) << ob.failure;
    auto data = Pattern(8192, 5);
    const int cid = q.Submit(nvme::BuildWrite(1, 0, 16, false), data.data(), 8192, 1);
    fc.Pump(q);
    fc.R2T(cid, 1, 0, 4096);
    fc.Deliver(q);
    fc.Pump(q, SIZE_MAX, /*ack=*/c.write_first);
    fc.R2T(cid, c.second_ttag, 4096, 4096);
    fc.Deliver(q);
    if (*c.message) {
      EXPECT_EQ(q.state(), HostQueue::State::kFailed);
      EXPECT_THAT(ob.failure.message(), HasSubstr(c.message));
    } else {
      EXPECT_TRUE(q.live()) << ob.failure;
    }
  }
}

TEST_F(HostQueueTest, ProtocolViolationsOnData) {
  struct Case {
    const char* name;
    std::function<void(FakeController&, int cid)> send;
    Fes fes;
    uint32_t fei;
  };
  const std::vector<Case> cases = {
      {"unknown cid", [](FakeController& c, int cid) { c.C2H(cid ^ 0x8000, 0, Pattern(8, 1)); },
       Fes::kInvalidHeaderField, 8},
      {"out of order", [](FakeController& c, int cid) { c.C2H(cid, 512, Pattern(8, 1)); },
       Fes::kPduSequenceError, 12},
      {"out of range", [](FakeController& c, int cid) { c.C2H(cid, 4000, Pattern(200, 1)); },
       Fes::kDataOutOfRange, 12},
      {"success short",
       [](FakeController& c, int cid) {
         c.C2H(cid, 0, Pattern(8, 1), kFlagLastPdu | kFlagSuccess);
       },
       Fes::kDataOutOfRange, 16},
      {"icresp twice", [](FakeController& c, int) { c.IcResp(); }, Fes::kPduSequenceError, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeController fc;
    Observer ob;
    HostQueueOptions o = Opts(1);
    o.disable_sq_flow_control = true;  // so that SUCCESS is allowed, and its length checked
    HostQueue q(o, &ob);
    ASSERT_THAT(fc.BringUp(q), IsOk()) << ob.failure;
    std::vector<uint8_t> buf(4096);
    const int cid = q.Submit(nvme::BuildRead(1, 0, 8), buf.data(), 4096, 1);
    fc.Pump(q);
    c.send(fc, cid);
    fc.Deliver(q);
    EXPECT_EQ(q.state(), HostQueue::State::kFailed);
    EXPECT_EQ(ob.failures, 1);
    fc.Pump(q);
    ASSERT_TRUE(fc.termreq.has_value());
    EXPECT_EQ(fc.termreq->fes.get(), static_cast<uint16_t>(c.fes));
    EXPECT_EQ(fc.termreq->fei.get(), c.fei);
    EXPECT_TRUE(ob.done.empty());
  }
}

TEST_F(HostQueueTest, ControllerTermReqFailsWithoutAnswering) {
  HostQueue q(Opts(1), &obs);
  Connect(q);
  ctrl.TermReq(Fes::kHeaderDigestError, 0);
  ctrl.Deliver(q);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  EXPECT_THAT(obs.failure.message(), HasSubstr("C2HTermReq"));
  EXPECT_THAT(obs.failure.message(), HasSubstr("Header Digest Error"));
  ctrl.Pump(q);
  EXPECT_FALSE(ctrl.termreq.has_value());
}

// Completions the controller cannot legitimately send: each fails the queue with a TermReq and
// completes nothing (the owner re-issues the command after the teardown).
TEST_F(HostQueueTest, PrematureCompletionsAreProtocolErrors) {
  struct Case {
    const char* name;
    uint32_t in_capsule_data;
    bool disable_sqfc;
    // Runs after the 8 KiB write (cookie 1) was submitted; returns the controller's bad answer.
    std::function<void(HostQueue&, FakeController&, int cid)> act;
    Fes fes;
    uint32_t fei;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"capsule not sent", 8192, false,
       [](HostQueue& q, FakeController& c, int cid) {
         c.Pump(q, SIZE_MAX, /*ack=*/false);  // nothing reported written
         c.Resp(cid, nvme::MakeStatus(0, nvme::kScLbaOutOfRange, true));
       },
       Fes::kInvalidHeaderField, 20, "before its capsule was sent"},
      {"in-capsule data not sent", 8192, false,
       [](HostQueue& q, FakeController& c, int cid) {
         c.Pump(q, SIZE_MAX, /*ack=*/false);
         q.SendComplete(100);
         c.Resp(cid);
       },
       Fes::kPduSequenceError, 20, "before its in-capsule data was sent"},
      {"no R2T yet", 0, false,
       [](HostQueue& q, FakeController& c, int cid) {
         c.Pump(q);
         c.Resp(cid);
       },
       Fes::kPduSequenceError, 20, "R2Ts cover 0 of 8192 bytes"},
      {"R2T for half", 0, false,
       [](HostQueue& q, FakeController& c, int cid) {
         c.Pump(q);
         c.R2T(cid, 1, 0, 4096);
         c.Deliver(q);
         c.Pump(q);
         c.Resp(cid);
       },
       Fes::kPduSequenceError, 20, "R2Ts cover 4096 of 8192 bytes"},
      {"H2C data unsent", 0, false,
       [](HostQueue& q, FakeController& c, int cid) {
         c.Pump(q);
         c.R2T(cid, 1, 0, 8192);
         c.Deliver(q);
         c.Pump(q, SIZE_MAX, /*ack=*/false);
         c.Resp(cid);
       },
       Fes::kPduSequenceError, 20, "before all data it asked for was sent"},
      {"next generation", 8192, true,
       [](HostQueue& q, FakeController& c, int cid) {
         c.Pump(q);
         c.Resp(static_cast<uint16_t>(cid + (1 << 5)));  // depth 31: 5 index bits
       },
       Fes::kInvalidHeaderField, 20, "unknown or completed command ID"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeController fc;
    Observer ob;
    HostQueueOptions o = Opts(1);
    o.in_capsule_data = c.in_capsule_data;
    o.disable_sq_flow_control = c.disable_sqfc;
    HostQueue q(o, &ob);
    ASSERT_THAT(fc.BringUp(q), IsOk()) << ob.failure;
    auto data = Pattern(8192, 5);
    const int cid = q.Submit(nvme::BuildWrite(1, 0, 16, false), data.data(), 8192, 1);
    ASSERT_GE(cid, 0);
    c.act(q, fc, cid);
    fc.Deliver(q);
    EXPECT_EQ(q.state(), HostQueue::State::kFailed);
    EXPECT_THAT(ob.failure.message(), HasSubstr(c.message));
    EXPECT_TRUE(ob.done.empty());
    // The TermReq goes out next; what was unsent of the stream is dropped.
    FakeController after;
    ASSERT_TRUE(q.termination_due());
    ASSERT_TRUE(q.BeginTermination());
    iovec iov[8];
    const int n = q.PendingSend(iov, 8);
    ASSERT_GE(n, 1);
    const auto* term = static_cast<const uint8_t*>(iov[n - 1].iov_base);
    EXPECT_EQ(term[0], static_cast<uint8_t>(PduType::kH2CTermReq));
    EXPECT_EQ(LoadLe16(term + 8), static_cast<uint16_t>(c.fes));
    EXPECT_EQ(LoadLe32(term + 10), c.fei);
    q.FailOutstanding(-ECONNABORTED);
    for (const auto& [cookie, d] : ob.done) EXPECT_EQ(d.error, -ECONNABORTED) << cookie;
  }
}

TEST_F(HostQueueTest, TermReqFollowsThePartlyWrittenPduOnly) {
  HostQueueOptions o = Opts(1);
  HostQueue q(o, &obs);
  Connect(q);
  auto data = Pattern(4096, 1);
  ASSERT_GE(q.Submit(nvme::BuildWrite(1, 0, 8, false), data.data(), 4096, 1), 0);
  ASSERT_GE(q.Submit(nvme::BuildWrite(1, 8, 8, false), data.data(), 4096, 2), 0);
  EXPECT_EQ(q.PendingSendBytes(), 2 * (72u + 4096u));
  q.SendComplete(1000);  // the first capsule is partly written
  ctrl.Resp(0x7FFF);     // no such command
  ctrl.Deliver(q);
  ASSERT_EQ(q.state(), HostQueue::State::kFailed);
  ASSERT_TRUE(q.BeginTermination());
  // The rest of the first capsule (the stream stays framed), then the TermReq; not the second.
  EXPECT_EQ(q.PendingSendBytes(), 72u + 4096u - 1000u + 24u + 24u);
  q.SendComplete(q.PendingSendBytes());
  EXPECT_FALSE(q.HasPendingSend());
  EXPECT_FALSE(q.BeginTermination());  // written once
}

TEST_F(HostQueueTest, FreedSlotsAreReusedOldestFirst) {
  HostQueue q(Opts(1, 4), &obs);  // 3 slots
  Connect(q);
  std::vector<int> indexes;
  for (int i = 0; i < 6; ++i) {
    const int cid = q.Submit(nvme::BuildFlush(1), nullptr, 0, 10 + i);
    ASSERT_GE(cid, 0);
    indexes.push_back(cid & 3);  // 2 index bits
    ctrl.Pump(q);
    ctrl.Resp(static_cast<uint16_t>(cid));
    ctrl.Deliver(q);
  }
  // One command at a time still walks all slots: a just-freed slot waits behind the others
  // (Connect used slot 0).
  EXPECT_EQ(indexes, (std::vector<int>{1, 2, 0, 1, 2, 0}));
}

TEST_F(HostQueueTest, HugeQueueSizeKeepsGenerationBits) {
  HostQueue q(Opts(1, 65535), &obs);
  Connect(q);
  EXPECT_EQ(q.depth(), HostQueue::kMaxQueueSize - 1u);
  const uint8_t* raw = reinterpret_cast<const uint8_t*>(&ctrl.commands[0].sqe);
  EXPECT_EQ(LoadLe16(raw + 44), HostQueue::kMaxQueueSize - 1);  // SQSIZE 0-based
  const int cid = q.Submit(nvme::BuildFlush(1), nullptr, 0, 1);
  EXPECT_NE(cid >> 12, 0);  // a generation above the 12 index bits
}

}  // namespace
}  // namespace nvmf_ublk::tcp
