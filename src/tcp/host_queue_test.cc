#include "tcp/host_queue.h"

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/commands.h"
#include "nvme/spec.h"
#include "tcp/testing/fake_controller.h"
#include "tcp/testing/host_queue_testing.h"

namespace nvmf_ublk::tcp {
namespace {

using ::nvmf_ublk::tcp::testing::HostQueueTest;
using ::nvmf_ublk::tcp::testing::kHostNqn;
using ::nvmf_ublk::tcp::testing::kSubNqn;
using ::nvmf_ublk::tcp::testing::Observer;
using ::nvmf_ublk::tcp::testing::Opts;
using ::nvmf_ublk::tcp::testing::Pattern;
using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

TEST_F(HostQueueTest, AdminConnectSequence) {
  HostQueue q(Opts(), &obs);
  EXPECT_EQ(q.state(), HostQueue::State::kIdle);
  ASSERT_THAT(q.Start(), IsOk());
  EXPECT_EQ(q.state(), HostQueue::State::kWaitIcResp);
  ctrl.Pump(q);
  ASSERT_TRUE(ctrl.icreq.has_value());
  EXPECT_EQ(ctrl.icreq->pfv.get(), 0);
  EXPECT_EQ(ctrl.icreq->hpda, 0);
  EXPECT_EQ(ctrl.icreq->dgst, 0);
  EXPECT_EQ(ctrl.icreq->maxr2t.get(), 3u);  // 4 R2Ts, 0-based
  EXPECT_EQ(q.Submit(nvme::BuildKeepAlive(), nullptr, 0, 1), -ENOTCONN);

  ctrl.IcResp();
  ctrl.Deliver(q);
  ctrl.Pump(q);
  ASSERT_EQ(ctrl.commands.size(), 1u);
  const auto& connect = ctrl.commands[0];
  EXPECT_EQ(connect.sqe.opcode, nvme::kFabricsOpcode);
  EXPECT_EQ(connect.sqe.dptr.sgl_id, nvme::kSglIdInCapsule);
  EXPECT_EQ(connect.sqe.dptr.length.get(), 1024u);
  const uint8_t* raw = reinterpret_cast<const uint8_t*>(&connect.sqe);
  EXPECT_EQ(raw[4], 0x01);               // FCTYPE Connect
  EXPECT_EQ(LoadLe16(raw + 42), 0);      // QID
  EXPECT_EQ(LoadLe16(raw + 44), 31);     // SQSIZE 0-based
  EXPECT_EQ(LoadLe32(raw + 48), 5000u);  // KATO
  ASSERT_EQ(connect.data.size(), 1024u);
  EXPECT_EQ(connect.data[0], 0xA0);                       // HOSTID
  EXPECT_EQ(LoadLe16(connect.data.data() + 16), 0xFFFF);  // CNTLID
  EXPECT_STREQ(reinterpret_cast<const char*>(connect.data.data() + 256), kSubNqn);
  EXPECT_STREQ(reinterpret_cast<const char*>(connect.data.data() + 512), kHostNqn);

  ctrl.AcceptConnect(0x0042);
  ctrl.Deliver(q);
  EXPECT_TRUE(q.live());
  EXPECT_EQ(obs.live_cntlid, 0x0042);
  EXPECT_EQ(q.cntlid(), 0x0042);
  EXPECT_EQ(q.depth(), 31u);
  EXPECT_TRUE(obs.done.empty());  // Connect is internal
}

TEST_F(HostQueueTest, IoQueueConnectCarriesAdminCntlidAndSqfcAttribute) {
  HostQueueOptions o = Opts(2, 128);
  o.disable_sq_flow_control = true;
  HostQueue q(o, &obs);
  Connect(q);
  const uint8_t* raw = reinterpret_cast<const uint8_t*>(&ctrl.commands[0].sqe);
  EXPECT_EQ(LoadLe16(raw + 42), 2);
  EXPECT_EQ(LoadLe16(raw + 44), 127);
  EXPECT_EQ(raw[46], nvme::kConnectAttrDisableSqFlowControl);
  EXPECT_EQ(LoadLe32(raw + 48), 0u);
  EXPECT_EQ(LoadLe16(ctrl.commands[0].data.data() + 16), 7);
  EXPECT_EQ(q.cntlid(), 7);
}

TEST_F(HostQueueTest, ConnectWithDigestsAndCpdaByteAtATime) {
  HostQueueOptions o = Opts(1);
  o.header_digest = o.data_digest = true;
  HostQueue q(o, &obs);
  ctrl.Configure(true, true, /*cpda=*/7);
  Connect(q, 65536, /*chunk=*/1);
  EXPECT_EQ(ctrl.icreq->dgst, kDgstHeader | kDgstData);
  EXPECT_EQ(ctrl.commands[0].flags, kFlagHdgst | kFlagDdgst);
  EXPECT_EQ(ctrl.commands[0].pdo % 32, 0);  // CPDA 7 = 32-byte alignment
  EXPECT_EQ(ctrl.bad_data_digests, 0);
  EXPECT_TRUE(q.negotiated().header_digest);
  EXPECT_EQ(q.negotiated().cpda_bytes, 32u);
}

TEST_F(HostQueueTest, InvalidNqnFailsStartWithoutSending) {
  HostQueueOptions o = Opts();
  o.subnqn = "not-an-nqn";
  HostQueue q(o, &obs);
  EXPECT_THAT(q.Start(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nqn.")));
  EXPECT_FALSE(q.HasPendingSend());
}

TEST_F(HostQueueTest, ConnectRejectedIsAClearErrorWithoutTermReq) {
  HostQueue q(Opts(), &obs);
  ASSERT_THAT(q.Start(), IsOk());
  ctrl.Pump(q);
  ctrl.IcResp();
  ctrl.Deliver(q);
  ctrl.Pump(q);
  ctrl.Resp(ctrl.commands[0].sqe.cid.get(),
            nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectInvalidHost, true));
  ctrl.Deliver(q);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  EXPECT_THAT(obs.failure, StatusIs(absl::StatusCode::kPermissionDenied,
                                    HasSubstr("Connect: Connect Invalid Host")));
  ctrl.Pump(q);
  EXPECT_FALSE(ctrl.termreq.has_value());
}

TEST_F(HostQueueTest, ConnectInvalidParametersNamesTheField) {
  HostQueue q(Opts(), &obs);
  ASSERT_THAT(q.Start(), IsOk());
  ctrl.Pump(q);
  ctrl.IcResp();
  ctrl.Deliver(q);
  ctrl.Pump(q);
  // IATTR = 1 (Connect data), IPO = 256 (SUBNQN), as nvmet answers an unknown subsystem.
  ctrl.Resp(ctrl.commands[0].sqe.cid.get(),
            nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectInvalidParameters, true),
            (1u << 16) | 256);
  ctrl.Deliver(q);
  EXPECT_THAT(obs.failure, StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("no subsystem with this NQN")));
  EXPECT_THAT(obs.failure.message(), HasSubstr("Connect Invalid Parameters"));
}

TEST_F(HostQueueTest, ReadWithSeveralC2HDataThenResponse) {
  HostQueue q(Opts(1), &obs);
  Connect(q);
  std::vector<uint8_t> buf(8192, 0xCC);
  const int cid = q.Submit(nvme::BuildRead(1, 100, 16), buf.data(), 8192, 77);
  ASSERT_GE(cid, 0);
  ctrl.Pump(q);
  const auto& cmd = ctrl.commands.back();
  EXPECT_EQ(cmd.sqe.dptr.sgl_id, nvme::kSglIdTransport);
  EXPECT_EQ(cmd.sqe.dptr.length.get(), 8192u);
  EXPECT_EQ(cmd.sqe.cid.get(), cid);
  const auto data = Pattern(8192, 3);
  ctrl.C2H(cid, 0, {data.data(), 3000});
  ctrl.C2H(cid, 3000, {data.data() + 3000, 5192}, kFlagLastPdu);
  ctrl.Resp(cid, 0, 0, 1);
  ctrl.Deliver(q, 7);
  ASSERT_EQ(obs.done.count(77), 1u);
  EXPECT_EQ(obs.done[77].error, 0);
  EXPECT_EQ(buf, data);
  EXPECT_EQ(q.outstanding(), 0u);
}

TEST_F(HostQueueTest, SuccessFlagCompletesWithoutResponse) {
  HostQueueOptions o = Opts(1);
  o.disable_sq_flow_control = true;
  HostQueue q(o, &obs);
  Connect(q);
  std::vector<uint8_t> buf(512);
  const int cid = q.Submit(nvme::BuildRead(1, 0, 1), buf.data(), 512, 5);
  ctrl.Pump(q);
  const auto data = Pattern(512, 9);
  ctrl.C2H(cid, 0, data, kFlagLastPdu | kFlagSuccess);
  ctrl.Deliver(q);
  ASSERT_EQ(obs.done.count(5), 1u);
  EXPECT_EQ(obs.done[5].error, 0);
  EXPECT_EQ(obs.done[5].cqe.cid.get(), cid);
  EXPECT_EQ(obs.done[5].cqe.status.get(), 0);
  EXPECT_EQ(buf, data);
  // A CapsuleResp for the same command afterwards is a stale completion.
  ctrl.Resp(cid);
  ctrl.Deliver(q);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  ctrl.Pump(q);
  ASSERT_TRUE(ctrl.termreq.has_value());
  EXPECT_EQ(ctrl.termreq->fes.get(), 1);
  EXPECT_EQ(ctrl.termreq->fei.get(), 20u);  // CapsuleResp CQE CID offset
}

// SPDK's target completes reads with C2HData SUCCESS whether or not SQ flow control is disabled;
// the Linux host accepts that, and so do we. Without SQHD from those completions the SQ must
// still never look full: 3 x the queue size of reads, each completed that way, all go out.
TEST_F(HostQueueTest, SuccessFlagWithFlowControlOnIsAcceptedAndTheSqKeepsMoving) {
  HostQueueOptions o = Opts(1);
  ASSERT_FALSE(o.disable_sq_flow_control);
  HostQueue q(o, &obs);
  Connect(q);
  std::vector<uint8_t> buf(512), pinned_buf(512);
  const auto data = Pattern(512, 4);
  // One read stays outstanding throughout (so the queue is never empty, which would reset the
  // head), answered only at the end.
  const int pinned = q.Submit(nvme::BuildRead(1, 8, 1), pinned_buf.data(), 512, 99);
  ASSERT_GE(pinned, 0);
  for (uint64_t i = 0; i < 3u * o.queue_size; ++i) {
    ASSERT_TRUE(q.CanSubmit()) << "SQ looks full after " << i << " reads";
    const int cid = q.Submit(nvme::BuildRead(1, 0, 1), buf.data(), 512, 100 + i);
    ASSERT_GE(cid, 0);
    ctrl.Pump(q);
    ctrl.C2H(static_cast<uint16_t>(cid), 0, data, kFlagLastPdu | kFlagSuccess);
    ctrl.Deliver(q);
    ASSERT_EQ(obs.done.count(100 + i), 1u);
    EXPECT_EQ(obs.done[100 + i].error, 0);
  }
  ctrl.C2H(static_cast<uint16_t>(pinned), 0, data, kFlagLastPdu | kFlagSuccess);
  ctrl.Deliver(q);
  ASSERT_EQ(obs.done.count(99), 1u);
  EXPECT_EQ(q.state(), HostQueue::State::kLive);
  EXPECT_EQ(buf, data);
  EXPECT_EQ(pinned_buf, data);
  EXPECT_FALSE(ctrl.termreq.has_value());
}

TEST_F(HostQueueTest, ErrorStatusBeforeAllDataIsDelivered) {
  HostQueue q(Opts(1), &obs);
  Connect(q);
  std::vector<uint8_t> buf(4096);
  const int cid = q.Submit(nvme::BuildRead(1, 0, 8), buf.data(), 4096, 1);
  ctrl.Pump(q);
  ctrl.C2H(cid, 0, Pattern(1024, 1));
  ctrl.Resp(cid, nvme::MakeStatus(0, nvme::kScLbaOutOfRange, true));
  ctrl.Deliver(q);
  ASSERT_EQ(obs.done.count(1), 1u);
  EXPECT_EQ(obs.done[1].error, 0);
  EXPECT_TRUE(q.live());
}

TEST_F(HostQueueTest, DataDigestErrorFailsTheCommandNotTheQueue) {
  HostQueueOptions o = Opts(1);
  o.data_digest = true;
  HostQueue q(o, &obs);
  ctrl.Configure(false, true, 0);
  Connect(q);
  std::vector<uint8_t> buf(1024);
  const int cid = q.Submit(nvme::BuildRead(1, 0, 2), buf.data(), 1024, 1);
  ctrl.Pump(q);
  // C2HData whose payload is corrupted after the data digest was computed, then the response.
  const auto data = Pattern(1024, 4);
  std::vector<uint8_t> raw;
  const WireFormat wf{false, true, 4};
  uint8_t h[kMaxHeaderBytes];
  AppendPdu(&raw, h, EncodeDataPdu(h, PduType::kC2HData, kFlagLastPdu, cid, 0, 0, 1024, wf), data,
            wf);
  raw[100] ^= 0x40;
  nvme::Cqe cqe{};
  cqe.cid.set(cid);
  AppendPdu(&raw, h, EncodeCapsuleResp(h, cqe, wf), {}, wf);
  q.Feed(raw.data(), raw.size());
  ASSERT_EQ(obs.done.count(1), 1u);
  EXPECT_EQ(obs.done[1].error, -EBADMSG);
  EXPECT_TRUE(q.live());
  // The next read on the same queue succeeds.
  const int cid2 = q.Submit(nvme::BuildRead(1, 0, 2), buf.data(), 1024, 2);
  ASSERT_GE(cid2, 0);
  EXPECT_NE(cid2, cid);
}

TEST_F(HostQueueTest, InCapsuleWrite) {
  HostQueueOptions o = Opts(1);
  o.in_capsule_data = 8192;
  o.data_digest = true;
  HostQueue q(o, &obs);
  ctrl.Configure(false, true, 3);
  Connect(q);
  auto data = Pattern(8192, 8);
  const int cid = q.Submit(nvme::BuildWrite(1, 0, 16, true), data.data(), 8192, 9);
  ASSERT_GE(cid, 0);
  ctrl.Pump(q);
  const auto& cmd = ctrl.commands.back();
  EXPECT_EQ(cmd.sqe.dptr.sgl_id, nvme::kSglIdInCapsule);
  EXPECT_EQ(cmd.sqe.dptr.address.get(), 0u);
  EXPECT_EQ(cmd.data, data);
  EXPECT_EQ(cmd.pdo % 16, 0);
  EXPECT_EQ(ctrl.bad_data_digests, 0);
  EXPECT_EQ(cmd.sqe.cdw12.get() & nvme::kRwFua, nvme::kRwFua);
  ctrl.Resp(cid);
  ctrl.Deliver(q);
  EXPECT_EQ(obs.done[9].error, 0);
}

TEST_F(HostQueueTest, R2TWriteWithSeveralR2TsSplitAtMaxH2CData) {
  HostQueueOptions o = Opts(1);
  o.in_capsule_data = 0;
  o.maxr2t = 2;
  o.header_digest = o.data_digest = true;
  HostQueue q(o, &obs);
  ctrl.Configure(true, true, /*cpda=*/3);
  Connect(q, /*maxh2cdata=*/4096);
  auto data = Pattern(20480, 2);
  const int cid = q.Submit(nvme::BuildWrite(1, 0, 40, false), data.data(), 20480, 11);
  ASSERT_GE(cid, 0);
  ctrl.Pump(q);
  EXPECT_EQ(ctrl.commands.back().sqe.dptr.sgl_id, nvme::kSglIdTransport);
  EXPECT_TRUE(ctrl.commands.back().data.empty());
  // Two R2Ts outstanding at once (MAXR2T 1 = two), then the third after the first is served.
  ctrl.R2T(cid, 0x10, 0, 8192);
  ctrl.R2T(cid, 0x11, 8192, 6000);
  ctrl.Deliver(q);
  ctrl.Pump(q, 5);
  ctrl.R2T(cid, 0x12, 14192, 6288);
  ctrl.Deliver(q);
  ctrl.Pump(q);
  ASSERT_EQ(ctrl.h2c.size(), 2u + 2u + 2u);
  std::vector<uint8_t> got(20480, 0);
  std::vector<uint32_t> lasts;
  for (const auto& h : ctrl.h2c) {
    EXPECT_EQ(h.hdr.cccid.get(), cid);
    EXPECT_LE(h.hdr.datal.get(), 4096u);
    EXPECT_EQ(h.pdo % 16, 0);
    std::memcpy(got.data() + h.hdr.datao.get(), h.data.data(), h.data.size());
    if (h.hdr.ch.flags & kFlagLastPdu) lasts.push_back(h.hdr.datao.get() + h.hdr.datal.get());
  }
  EXPECT_EQ(got, data);
  EXPECT_EQ(lasts, (std::vector<uint32_t>{8192, 14192, 20480}));
  EXPECT_EQ(ctrl.h2c[0].hdr.ttag.get(), 0x10);
  EXPECT_EQ(ctrl.h2c[2].hdr.ttag.get(), 0x11);
  EXPECT_EQ(ctrl.h2c[5].hdr.ttag.get(), 0x12);
  EXPECT_EQ(ctrl.bad_data_digests, 0);
  ctrl.Resp(cid);
  ctrl.Deliver(q);
  EXPECT_EQ(obs.done[11].error, 0);
}

TEST_F(HostQueueTest, ErrorCompletionWaitsUntilItsBytesAreSent) {
  HostQueue q(Opts(1), &obs);
  Connect(q);
  auto data = Pattern(4096, 1);
  const int cid = q.Submit(nvme::BuildWrite(1, 0, 8, false), data.data(), 4096, 3);
  // The header and part of the in-capsule data are written; a target may reject the command then
  // (nvmet does, and drains the data afterwards).
  ctrl.Pump(q, SIZE_MAX, /*ack=*/false);
  q.SendComplete(100);
  ctrl.Resp(cid, nvme::MakeStatus(0, nvme::kScLbaOutOfRange, true));
  ctrl.Deliver(q);
  EXPECT_TRUE(q.live()) << obs.failure;
  EXPECT_TRUE(obs.done.empty());  // its buffer is still being sent
  EXPECT_EQ(q.outstanding(), 0u);
  EXPECT_EQ(q.PendingSendBytes(), 72u + 4096u - 100u);
  q.SendComplete(72 + 4096 - 100);
  ASSERT_EQ(obs.done.count(3), 1u);
  EXPECT_EQ(obs.done[3].error, 0);
}

TEST_F(HostQueueTest, ConnectGoesOverR2TBelow1024InCapsuleBytes) {
  HostQueueOptions o = Opts(1);
  o.in_capsule_data = 512;
  HostQueue q(o, &obs);
  ASSERT_THAT(q.Start(), IsOk());
  ctrl.Pump(q);
  ctrl.IcResp();
  ctrl.Deliver(q);
  ctrl.Pump(q);
  ASSERT_EQ(ctrl.commands.size(), 1u);
  EXPECT_EQ(ctrl.commands[0].sqe.dptr.sgl_id, nvme::kSglIdTransport);
  EXPECT_TRUE(ctrl.commands[0].data.empty());
  ctrl.R2T(ctrl.commands[0].sqe.cid.get(), 3, 0, 1024);
  ctrl.Deliver(q);
  ctrl.Pump(q);
  ASSERT_EQ(ctrl.h2c.size(), 1u);
  EXPECT_STREQ(reinterpret_cast<const char*>(ctrl.h2c[0].data.data() + 256), kSubNqn);
  ctrl.AcceptConnect(3);
  ctrl.Deliver(q);
  EXPECT_TRUE(q.live()) << obs.failure;
}

TEST_F(HostQueueTest, FlowControlAndGenerations) {
  HostQueue q(Opts(1, 4), &obs);  // 4 SQ entries -> 3 commands
  Connect(q);
  // Connect used SQ slot 0 and the controller reported SQHD 0xFFFF; head resynced at idle.
  std::vector<int> cids;
  for (int i = 0; i < 3; ++i) {
    cids.push_back(q.Submit(nvme::BuildFlush(1), nullptr, 0, 100 + i));
    ASSERT_GE(cids.back(), 0);
  }
  EXPECT_EQ(q.Submit(nvme::BuildFlush(1), nullptr, 0, 200), -EAGAIN);
  ctrl.Pump(q);
  // Complete one but report (SQHD 1) that the controller consumed none of the three entries: a slot
  // is free but the SQ is still full.
  ctrl.Resp(cids[0], 0, 0, /*sqhd=*/1);
  ctrl.Deliver(q);
  EXPECT_FALSE(q.CanSubmit());
  EXPECT_EQ(q.Submit(nvme::BuildFlush(1), nullptr, 0, 200), -EAGAIN);
  ctrl.Resp(cids[1], 0, 0, /*sqhd=*/3);
  ctrl.Deliver(q);
  // Tail is at 0 (1 + 3 mod 4); head 3: one entry in use, two free.
  const int c4 = q.Submit(nvme::BuildFlush(1), nullptr, 0, 103);
  ASSERT_GE(c4, 0);
  const int c5 = q.Submit(nvme::BuildFlush(1), nullptr, 0, 104);
  ASSERT_GE(c5, 0);
  EXPECT_EQ(q.Submit(nvme::BuildFlush(1), nullptr, 0, 105), -EAGAIN);
  // Slot reuse gives a new generation: the old CID of a reused slot is now stale.
  EXPECT_NE(c4, cids[0]);
  EXPECT_NE(c4, cids[1]);
  ctrl.Pump(q);
  ctrl.Resp(cids[0]);  // stale
  ctrl.Deliver(q);
  EXPECT_EQ(q.state(), HostQueue::State::kFailed);
  q.FailOutstanding(-ECONNABORTED);
  EXPECT_EQ(obs.done.size(), 5u);
  EXPECT_EQ(obs.done[102].error, -ECONNABORTED);
  EXPECT_EQ(obs.done[103].error, -ECONNABORTED);
  EXPECT_EQ(obs.done[100].error, 0);
}

TEST_F(HostQueueTest, SubmitArgumentChecks) {
  HostQueue q(Opts(1), &obs);
  Connect(q);
  uint8_t b[512];
  EXPECT_EQ(q.Submit(nvme::BuildFlush(1), b, 512, 1), -EINVAL);  // no-data opcode with data
  EXPECT_EQ(q.Submit(nvme::BuildRead(1, 0, 1), nullptr, 512, 1), -EINVAL);
  // A data-direction opcode without data (Set Features for most features) carries a null SGL.
  const int cid = q.Submit(nvme::BuildSetNumberOfQueues(4), nullptr, 0, 2);
  ASSERT_GE(cid, 0);
  ctrl.Pump(q);
  EXPECT_EQ(ctrl.commands.back().sqe.dptr.length.get(), 0u);
  EXPECT_EQ(ctrl.commands.back().sqe.dptr.sgl_id, nvme::kSglIdTransport);
  EXPECT_TRUE(ctrl.commands.back().data.empty());
}

TEST_F(HostQueueTest, NvmeErrorStatusIsDelivered) {
  HostQueue q(Opts(1), &obs);
  Connect(q);
  std::vector<uint8_t> buf(512);
  const int cid = q.Submit(nvme::BuildRead(1, 1ull << 40, 1), buf.data(), 512, 1);
  ctrl.Pump(q);
  ctrl.Resp(cid, nvme::MakeStatus(0, nvme::kScLbaOutOfRange, true));
  ctrl.Deliver(q);
  ASSERT_EQ(obs.done.count(1), 1u);
  EXPECT_EQ(obs.done[1].error, 0);  // a controller status, not a transport error
  EXPECT_EQ(obs.done[1].cqe.status.get() >> 1, nvme::MakeStatus(0, nvme::kScLbaOutOfRange, true));
  EXPECT_TRUE(q.live());
}

TEST_F(HostQueueTest, ObserverMaySubmitFromCompletion) {
  class Resubmit : public Observer {
   public:
    HostQueue* q = nullptr;
    int more = 3;
    void OnCommandDone(uint64_t cookie, const nvme::Cqe& cqe, int error) override {
      Observer::OnCommandDone(cookie, cqe, error);
      if (more-- > 0) {
        EXPECT_GE(q->Submit(nvme::BuildFlush(1), nullptr, 0, cookie + 1), 0);
      }
    }
  } ob;
  HostQueue q(Opts(1, 2), &ob);  // depth 1: each resubmission reuses the slot just freed
  ob.q = &q;
  ASSERT_THAT(ctrl.BringUp(q), IsOk()) << ob.failure;
  ASSERT_GE(q.Submit(nvme::BuildFlush(1), nullptr, 0, 1), 0);
  for (int i = 0; i < 4; ++i) {
    ctrl.Pump(q);
    ctrl.Resp(ctrl.commands.back().sqe.cid.get());
    ctrl.Deliver(q);
  }
  EXPECT_EQ(ob.done.size(), 4u);
  EXPECT_TRUE(q.live());
}

}  // namespace
}  // namespace nvmf_ublk::tcp
