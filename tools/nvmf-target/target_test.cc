// Integration tests of the target over loopback TCP, transport and controller state: the
// project's tcp::HostQueue (through testing::TestQueue) and raw PDUs (testing::RawConnection)
// against a Target in this process. Commands: target_commands_test.cc.
#include <dirent.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>

#include "nvme/status.h"
#include "tcp/pdu_codec.h"
#include "testing/target_fixture.h"

namespace nvmf_ublk::target {
namespace {

using ::nvmf_ublk::testing::IsOk;
using testing::BaseConfig;
using testing::Completion;
using testing::ConnectSession;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kNqn;
using testing::kNsBytes;
using testing::Pattern;
using testing::Pdu;
using testing::QueueOptions;
using testing::RawConnection;
using testing::Session;
using testing::TargetTest;
using testing::TestQueue;

size_t ThreadCount() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/task");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

TEST_F(TargetTest, StartReportsBoundPortsAndStopJoinsEveryThread) {
  std::thread([] {}).join();  // sanitizer runtimes start helper threads with the first thread
  const size_t before = ThreadCount();
  Start(BaseConfig(2));
  ASSERT_EQ(ports_.size(), 2u);
  EXPECT_NE(ports_[0], 0);
  EXPECT_NE(ports_[0], ports_[1]);
  EXPECT_EQ(target_->PortIndex(ports_[1]), 1u);
  {
    Session s = Connect(2);
    EXPECT_EQ(target_->LiveControllers(), 1u);
    EXPECT_EQ(target_->LiveConnections(), 3u);
    EXPECT_GT(ThreadCount(), before + 2);
    target_->Stop();
    EXPECT_TRUE(s.admin->WaitClosed(2000));
    EXPECT_TRUE(s.io0().WaitClosed(2000));
  }
  EXPECT_EQ(target_->LiveConnections(), 0u);
  EXPECT_EQ(target_->LiveControllers(), 0u);
  EXPECT_EQ(ThreadCount(), before);
  target_->Stop();  // idempotent
}

TEST_F(TargetTest, StartRejectsBadConfiguration) {
  TargetConfig c = BaseConfig();
  c.transport.maxh2cdata = 1000;
  Target t1(c);
  EXPECT_THAT(t1.Start(), ::nvmf_ublk::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                                         HasSubstr("MAXH2CDATA")));
  c = BaseConfig();
  c.subsystems[0].namespaces[0].block_size = 520;
  Target t2(c);
  EXPECT_THAT(
      t2.Start().status(),
      ::nvmf_ublk::testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block size")));
}

TEST_F(TargetTest, IcRespAdvertisesConfiguredParametersAndGrantsDigests) {
  TargetConfig c = BaseConfig();
  c.transport.cpda = 2;
  c.transport.maxh2cdata = 64 * 1024;
  Start(c);
  auto raw = RawConnection::Connect(ports_[0]);
  ASSERT_THAT(raw, IsOk());
  auto resp = (*raw)->Handshake(/*hpda=*/1, tcp::kDgstHeader | tcp::kDgstData, /*maxr2t=*/3);
  ASSERT_THAT(resp, IsOk());
  EXPECT_EQ(resp->pfv.get(), 0);
  EXPECT_EQ(resp->cpda, 2);
  EXPECT_EQ(resp->dgst, tcp::kDgstHeader | tcp::kDgstData);
  EXPECT_EQ(resp->maxh2cdata.get(), 64u * 1024);
}

TEST_F(TargetTest, RefusedDigestsAreNotGranted) {
  TargetConfig c = BaseConfig();
  c.transport.allow_data_digest = false;
  Start(c);
  auto raw = RawConnection::Connect(ports_[0]);
  ASSERT_THAT(raw, IsOk());
  auto resp = (*raw)->Handshake(0, tcp::kDgstHeader | tcp::kDgstData);
  ASSERT_THAT(resp, IsOk());
  EXPECT_EQ(resp->dgst, tcp::kDgstHeader);
}

TEST_F(TargetTest, IcReqWithBadPfvGetsTermReq) {
  Start(BaseConfig());
  auto raw = RawConnection::Connect(ports_[0]);
  ASSERT_THAT(raw, IsOk());
  uint8_t hdr[tcp::kMaxHeaderBytes];
  const uint32_t n = tcp::EncodeIcReq(hdr, 0, 0, 0);
  reinterpret_cast<tcp::IcReqPdu*>(hdr)->pfv.set(1);
  ASSERT_THAT((*raw)->Send({hdr, n}), IsOk());
  auto pdu = (*raw)->Receive();
  ASSERT_THAT(pdu, IsOk());
  ASSERT_EQ(pdu->type, tcp::PduType::kC2HTermReq);
  EXPECT_EQ(pdu->as<tcp::TermReqPdu>().fes.get(),
            static_cast<uint16_t>(tcp::Fes::kUnsupportedParameter));
  EXPECT_EQ(pdu->as<tcp::TermReqPdu>().fei.get(), offsetof(tcp::IcReqPdu, pfv));
  EXPECT_TRUE((*raw)->WaitEof());
  EXPECT_EQ(target_->Stats().term_reqs, 1u);
}

TEST_F(TargetTest, MalformedPduGetsTermReqWithParserFesAndFei) {
  Start(BaseConfig());
  auto raw = RawConnection::Connect(ports_[0]);
  ASSERT_THAT(raw, IsOk());
  ASSERT_THAT((*raw)->Handshake(), IsOk());
  uint8_t hdr[tcp::kMaxHeaderBytes];
  nvme::Sqe sqe = nvme::BuildKeepAlive();
  const uint32_t n = tcp::EncodeCapsuleCmd(hdr, sqe, 0, tcp::WireFormat{});
  hdr[2] = 71;  // HLEN
  ASSERT_THAT((*raw)->Send({hdr, n}), IsOk());
  auto pdu = (*raw)->Receive();
  ASSERT_THAT(pdu, IsOk());
  ASSERT_EQ(pdu->type, tcp::PduType::kC2HTermReq);
  EXPECT_EQ(pdu->as<tcp::TermReqPdu>().fes.get(),
            static_cast<uint16_t>(tcp::Fes::kInvalidHeaderField));
  EXPECT_EQ(pdu->as<tcp::TermReqPdu>().fei.get(), 2u);  // HLEN
  ASSERT_GE(pdu->data.size(), 8u);                      // the offending header comes back
  EXPECT_EQ(pdu->data[2], 71);
  EXPECT_TRUE((*raw)->WaitEof());
}

TEST_F(TargetTest, CapsuleBeforeIcReqIsASequenceError) {
  Start(BaseConfig());
  auto raw = RawConnection::Connect(ports_[0]);
  ASSERT_THAT(raw, IsOk());
  ASSERT_THAT((*raw)->SendCapsule(nvme::BuildKeepAlive(), {}), IsOk());
  auto pdu = (*raw)->Receive();
  ASSERT_THAT(pdu, IsOk());
  ASSERT_EQ(pdu->type, tcp::PduType::kC2HTermReq);
  EXPECT_EQ(pdu->as<tcp::TermReqPdu>().fes.get(),
            static_cast<uint16_t>(tcp::Fes::kPduSequenceError));
  EXPECT_TRUE((*raw)->WaitEof());
}

// SPDK's host, shutting down, reuses the CID of an Asynchronous Event Request still outstanding
// (for Property Get CC); nvmet accepts that. Here too: the AER is dropped, the new command runs.
TEST_F(TargetTest, ReusedCidOfAnOutstandingAerIsAccepted) {
  Start(BaseConfig());
  auto raw = RawConnection::Connect(ports_[0]);
  ASSERT_THAT(raw, IsOk());
  ASSERT_THAT((*raw)->Handshake(), IsOk());
  auto connected = (*raw)->ConnectQueue(kNqn, 0, 0xFFFF);
  ASSERT_THAT(connected, IsOk());
  ASSERT_EQ(connected->status.get() >> 1, 0);
  nvme::Sqe enable = nvme::BuildPropertySet(nvme::Property::kCc,
                                            nvme::kCcEnable | nvme::kCcIosqes | nvme::kCcIocqes);
  enable.cid.set(1);
  ASSERT_THAT((*raw)->SendCapsule(enable, {}), IsOk());
  auto enabled = (*raw)->Receive();
  ASSERT_THAT(enabled, IsOk());
  ASSERT_EQ(enabled->type, tcp::PduType::kCapsuleResp);
  ASSERT_EQ(enabled->as<tcp::CapsuleRespPdu>().cqe.status.get() >> 1, 0);
  nvme::Sqe aer = nvme::BuildAsyncEventRequest();
  aer.cid.set(3);
  ASSERT_THAT((*raw)->SendCapsule(aer, {}), IsOk());
  nvme::Sqe ka = nvme::BuildKeepAlive();
  ka.cid.set(3);
  ASSERT_THAT((*raw)->SendCapsule(ka, {}), IsOk());
  auto pdu = (*raw)->Receive();
  ASSERT_THAT(pdu, IsOk());
  ASSERT_EQ(pdu->type, tcp::PduType::kCapsuleResp);
  EXPECT_EQ(pdu->as<tcp::CapsuleRespPdu>().cqe.cid.get(), 3);
  EXPECT_EQ(pdu->as<tcp::CapsuleRespPdu>().cqe.status.get() >> 1, 0);
}

TEST_F(TargetTest, HeaderDigestErrorGetsTermReq) {
  Start(BaseConfig());
  auto raw = RawConnection::Connect(ports_[0]);
  ASSERT_THAT(raw, IsOk());
  ASSERT_THAT((*raw)->Handshake(0, tcp::kDgstHeader), IsOk());
  uint8_t hdr[tcp::kMaxHeaderBytes];
  const uint32_t n = tcp::EncodeCapsuleCmd(hdr, nvme::BuildKeepAlive(), 0, tcp::WireFormat{true});
  hdr[n - 1] ^= 1;
  ASSERT_THAT((*raw)->Send({hdr, n}), IsOk());
  auto pdu = (*raw)->Receive();
  ASSERT_THAT(pdu, IsOk());
  ASSERT_EQ(pdu->type, tcp::PduType::kC2HTermReq);
  EXPECT_EQ(pdu->as<tcp::TermReqPdu>().fes.get(),
            static_cast<uint16_t>(tcp::Fes::kHeaderDigestError));
  EXPECT_TRUE((*raw)->WaitEof());
}

TEST_F(TargetTest, PropertiesEnableAndShutdown) {
  Start(BaseConfig());
  auto admin = TestQueue::Connect(ports_[0], QueueOptions(kNqn));
  ASSERT_THAT(admin, IsOk());
  TestQueue& q = **admin;
  // Admin commands other than fabrics ones need an enabled controller.
  std::vector<uint8_t> buf(4096);
  Completion early =
      Run(q, nvme::BuildIdentify(nvme::IdentifyCns::kController, 0), buf.data(), 4096);
  EXPECT_EQ(early.sc(), nvme::kScCommandSequenceError);

  const uint64_t cap =
      nvme::PropertyValue(Run(q, nvme::BuildPropertyGet(nvme::Property::kCap)).cqe);
  EXPECT_EQ(nvme::CapMqes(cap), 128u);
  EXPECT_EQ(nvme::CapTimeoutMs(cap), 7500u);
  EXPECT_TRUE(cap & (1ull << 37));  // CSS: NVM command set
  EXPECT_EQ(nvme::PropertyValue(Run(q, nvme::BuildPropertyGet(nvme::Property::kVs)).cqe),
            0x00020000u);
  ASSERT_THAT(testing::EnableController(q), IsOk());
  const uint32_t cc = nvme::kCcEnable | nvme::kCcIosqes | nvme::kCcIocqes;
  EXPECT_EQ(nvme::PropertyValue(Run(q, nvme::BuildPropertyGet(nvme::Property::kCc)).cqe), cc);
  Completion set = Run(q, nvme::BuildPropertySet(nvme::Property::kCc, cc | nvme::kCcShnNormal));
  EXPECT_TRUE(set.ok());
  const uint64_t csts =
      nvme::PropertyValue(Run(q, nvme::BuildPropertyGet(nvme::Property::kCsts)).cqe);
  EXPECT_EQ(csts & nvme::kCstsShstMask, nvme::kCstsShstComplete);
  EXPECT_TRUE(csts & nvme::kCstsReady);
  // Read-only property.
  EXPECT_EQ(Run(q, nvme::BuildPropertySet(nvme::Property::kCsts, 0)).sc(), nvme::kScInvalidField);
}

TEST_F(TargetTest, ControllerResetClosesIoQueues) {
  Start(BaseConfig());
  Session s = Connect();
  EXPECT_TRUE(Run(*s.admin, nvme::BuildPropertySet(nvme::Property::kCc, 0)).ok());
  EXPECT_TRUE(s.io0().WaitClosed(2000));
  const uint64_t csts =
      nvme::PropertyValue(Run(*s.admin, nvme::BuildPropertyGet(nvme::Property::kCsts)).cqe);
  EXPECT_FALSE(csts & nvme::kCstsReady);
}

TEST_F(TargetTest, KeepAliveTimeoutDropsTheControllerAndKeepAliveKeepsIt) {
  Start(BaseConfig());
  // Kept alive: Keep Alive every 100 ms for longer than KATO.
  tcp::HostQueueOptions opts = QueueOptions(kNqn);
  opts.kato_ms = 300;
  auto kept = TestQueue::Connect(ports_[0], opts);
  ASSERT_THAT(kept, IsOk());
  ASSERT_THAT(testing::EnableController(**kept), IsOk());
  for (int i = 0; i < 7; ++i) {
    EXPECT_TRUE(Run(**kept, nvme::BuildKeepAlive()).ok());
    (*kept)->Poll(100);
  }
  EXPECT_FALSE((*kept)->closed());
  EXPECT_EQ(target_->LiveControllers(), 1u);
  kept->reset();

  // Silent: dropped after KATO, with its I/O queue.
  auto admin = TestQueue::Connect(ports_[0], opts);
  ASSERT_THAT(admin, IsOk());
  ASSERT_THAT(testing::EnableController(**admin), IsOk());
  auto io = TestQueue::Connect(ports_[0], QueueOptions(kNqn, 1, (*admin)->cntlid()));
  ASSERT_THAT(io, IsOk());
  EXPECT_TRUE((*admin)->WaitClosed(2000));
  EXPECT_TRUE((*io)->WaitClosed(2000));
  EXPECT_EQ(target_->LiveControllers(), 0u);
}

TEST_F(TargetTest, SqFlowControlDisabledUsesSqhdFfffAndSuccessFlag) {
  TargetConfig c = BaseConfig();
  c.transport.c2h_success = true;
  Start(c);
  tcp::HostQueueOptions io = QueueOptions(kNqn);
  io.disable_sq_flow_control = true;
  Session s = Connect(1, io);
  ASSERT_TRUE(s.admin);
  std::vector<uint8_t> data = Pattern(4096, 6);
  Completion w = Run(s.io0(), nvme::BuildWrite(1, 0, 8, false), data.data(), 4096);
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(w.cqe.sq_head.get(), 0xFFFF);
  std::vector<uint8_t> back(4096);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildRead(1, 0, 8), back.data(), 4096).ok());
  EXPECT_EQ(back, data);
  EXPECT_EQ(target_->Stats().c2h_success, 1u);
}

TEST_F(TargetTest, DataDigestErrorFailsTheCommandNotTheConnection) {
  Start(BaseConfig());
  Session s = Connect(0);
  ASSERT_TRUE(s.admin);
  auto raw = RawConnection::Connect(ports_[0]);
  ASSERT_THAT(raw, IsOk());
  ASSERT_THAT((*raw)->Handshake(0, tcp::kDgstHeader | tcp::kDgstData), IsOk());
  auto cqe = (*raw)->ConnectQueue(kNqn, 1, s.admin->cntlid());
  ASSERT_THAT(cqe, IsOk());
  ASSERT_EQ(cqe->status.get(), 0);
  std::vector<uint8_t> block = Pattern(512, 7);
  nvme::Sqe write = nvme::BuildWrite(1, 0, 1, false);
  write.cid.set(5);
  write.dptr.length.set(512);
  write.dptr.sgl_id = nvme::kSglIdInCapsule;
  const tcp::WireFormat wf{true, true, 4};
  uint8_t hdr[tcp::kMaxHeaderBytes];
  const uint32_t n = tcp::EncodeCapsuleCmd(hdr, write, 512, wf);
  std::vector<uint8_t> bytes;
  tcp::AppendPdu(&bytes, hdr, n, block, wf);
  bytes.back() ^= 0xFF;  // data digest
  ASSERT_THAT((*raw)->Send(bytes), IsOk());
  auto pdu = (*raw)->Receive();
  ASSERT_THAT(pdu, IsOk());
  ASSERT_EQ(pdu->type, tcp::PduType::kCapsuleResp);
  EXPECT_EQ(pdu->as<tcp::CapsuleRespPdu>().cqe.status.get() >> 1,
            nvme::MakeStatus(nvme::kSctGeneric, nvme::kScTransientTransportError));
  // The same command with a good digest succeeds on the same connection.
  ASSERT_THAT((*raw)->SendCapsule(write, block), IsOk());
  pdu = (*raw)->Receive();
  ASSERT_THAT(pdu, IsOk());
  EXPECT_EQ(pdu->as<tcp::CapsuleRespPdu>().cqe.status.get(), 0);

  // An H2CData PDU whose TTAG matches no R2T is fatal: FES Invalid Header Field at TTAG.
  uint8_t h2c[tcp::kMaxHeaderBytes];
  const uint32_t hn =
      tcp::EncodeDataPdu(h2c, tcp::PduType::kH2CData, tcp::kFlagLastPdu, 5, 77, 0, 512, wf);
  bytes.clear();
  tcp::AppendPdu(&bytes, h2c, hn, block, wf);
  ASSERT_THAT((*raw)->Send(bytes), IsOk());
  pdu = (*raw)->Receive();
  ASSERT_THAT(pdu, IsOk());
  ASSERT_EQ(pdu->type, tcp::PduType::kC2HTermReq);
  EXPECT_EQ(pdu->as<tcp::TermReqPdu>().fes.get(),
            static_cast<uint16_t>(tcp::Fes::kInvalidHeaderField));
  EXPECT_EQ(pdu->as<tcp::TermReqPdu>().fei.get(), offsetof(tcp::DataPdu, ttag));
  EXPECT_TRUE((*raw)->WaitEof());
}

TEST_F(TargetTest, GarbageAndMutatedPdusNeverCrashTheTarget) {
  Start(BaseConfig());
  Session s = Connect(0);  // a controller for the I/O queue Connects below
  ASSERT_TRUE(s.admin);
  uint32_t seed = 12345;
  auto rnd = [&seed]() {
    seed = seed * 1103515245u + 12345u;
    return seed >> 8;
  };
  for (int i = 0; i < 60; ++i) {
    auto raw = RawConnection::Connect(ports_[0]);
    ASSERT_THAT(raw, IsOk());
    std::vector<uint8_t> bytes;
    if (i % 3 != 0) {
      uint8_t hdr[tcp::kMaxHeaderBytes];
      bytes.insert(bytes.end(), hdr, hdr + tcp::EncodeIcReq(hdr, 0, i % 4 == 1 ? 3 : 0, 0));
      // A valid I/O queue Connect followed by a write, then mutate a few bytes after the ICReq.
      nvme::Sqe connect = nvme::BuildConnect(1, 32, 0, 0);
      connect.dptr.length.set(sizeof(nvme::ConnectData));
      connect.dptr.sgl_id = nvme::kSglIdInCapsule;
      uint8_t hostid[16];
      for (int k = 0; k < 16; ++k) hostid[k] = static_cast<uint8_t>(0xA0 + k);
      auto data = nvme::BuildConnectData(hostid, s.admin->cntlid(), kNqn, testing::kHostNqn);
      const tcp::WireFormat wf{i % 4 == 1, i % 4 == 1, 4};
      uint32_t n = tcp::EncodeCapsuleCmd(hdr, connect, sizeof(*data), wf);
      tcp::AppendPdu(&bytes, hdr, n, {reinterpret_cast<uint8_t*>(&*data), sizeof(*data)}, wf);
      nvme::Sqe write = nvme::BuildWrite(1, rnd() % 100, 8, false);
      write.dptr.length.set(4096);
      write.dptr.sgl_id = nvme::kSglIdTransport;
      n = tcp::EncodeCapsuleCmd(hdr, write, 0, wf);
      tcp::AppendPdu(&bytes, hdr, n, {}, wf);
      n = tcp::EncodeDataPdu(hdr, tcp::PduType::kH2CData, tcp::kFlagLastPdu, 0, 0, 0, 4096, wf);
      std::vector<uint8_t> payload = Pattern(4096, i);
      tcp::AppendPdu(&bytes, hdr, n, payload, wf);
      for (int m = 0; m < 1 + i % 4; ++m)
        bytes[128 + rnd() % (bytes.size() - 128)] ^= 1u << (rnd() % 8);
    } else {
      bytes.resize(1 + rnd() % 600);
      for (auto& b : bytes) b = static_cast<uint8_t>(rnd());
    }
    ASSERT_THAT((*raw)->Send(bytes), IsOk());
    // Whatever comes back, the target answers and closes (at our EOF at the latest); it must not
    // hang or crash.
    ::shutdown((*raw)->fd(), SHUT_WR);
    EXPECT_TRUE((*raw)->WaitEof(2000)) << "connection " << i;
  }
  // Still serving.
  Session after = Connect();
  ASSERT_TRUE(after.admin);
  std::vector<uint8_t> buf(512);
  EXPECT_TRUE(Run(after.io0(), nvme::BuildRead(1, 0, 1), buf.data(), 512).ok());
}

TEST_F(TargetTest, TwoHostsGetDistinctControllers) {
  Start(BaseConfig());
  Session a = Connect(), b = Connect();
  ASSERT_TRUE(a.admin && b.admin);
  EXPECT_NE(a.admin->cntlid(), b.admin->cntlid());
  EXPECT_EQ(target_->LiveControllers(), 2u);
  // A connection is listed by the accept thread just after its own thread started, which may
  // already have answered the host's Connect: wait for the listing.
  for (int i = 0; i < 100 && target_->LiveConnections() != 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(target_->LiveConnections(), 4u);
  a = Session{};
  for (int i = 0; i < 100 && target_->LiveControllers() != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(target_->LiveControllers(), 1u);
}

}  // namespace
}  // namespace nvmf_ublk::target