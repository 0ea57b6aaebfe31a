// Integration tests of the target over loopback TCP: the project's tcp::HostQueue (through
// testing::TestQueue) and raw PDUs (testing::RawConnection) against a Target in this process.
#include "target.h"

#include <dirent.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/identify.h"
#include "nvme/log_pages.h"
#include "nvme/status.h"
#include "tcp/pdu_codec.h"
#include "testing/test_host.h"

namespace nvmf_ublk::target {
namespace {

using ::nvmf_ublk::testing::IsOk;
using testing::Completion;
using testing::ConnectSession;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Pattern;
using testing::Pdu;
using testing::QueueOptions;
using testing::RawConnection;
using testing::Session;
using testing::TestQueue;

constexpr char kNqn[] = "nqn.2026-01.io.nvmf-ublk:test";
constexpr uint64_t kNsBytes = 8 << 20;

TargetConfig BaseConfig(int ports = 1) {
  TargetConfig c;
  for (int i = 0; i < ports; ++i) c.ports.push_back(PortConfig{});
  SubsystemConfig s;
  s.nqn = kNqn;
  NamespaceConfig ns1;
  ns1.size_bytes = kNsBytes;
  ns1.block_size = 512;
  ns1.ana_group = 1;
  NamespaceConfig ns2 = ns1;
  ns2.block_size = 4096;
  ns2.ana_group = 2;
  s.namespaces = {ns1, ns2};
  c.subsystems.push_back(s);
  return c;
}

size_t ThreadCount() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/task");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

class TargetTest : public ::testing::Test {
 protected:
  void Start(TargetConfig config) {
    target_ = std::make_unique<Target>(std::move(config));
    auto ports = target_->Start();
    ASSERT_THAT(ports, IsOk());
    ports_ = *ports;
  }
  Session Connect(int io_queues = 1, tcp::HostQueueOptions io = {}) {
    auto s = ConnectSession(ports_[0], kNqn, io_queues, io);
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : Session{};
  }
  std::vector<uint8_t> Identify(TestQueue& q, nvme::IdentifyCns cns, uint32_t nsid,
                                uint32_t cdw11 = 0) {
    std::vector<uint8_t> buf(4096);
    nvme::Sqe sqe = nvme::BuildIdentify(cns, nsid);
    sqe.cdw11.set(cdw11);
    auto c = q.Run(sqe, buf.data(), 4096);
    EXPECT_THAT(c, IsOk());
    if (c.ok()) {
      EXPECT_TRUE(c->ok()) << "status " << c->status();
    }
    return buf;
  }
  Completion Run(TestQueue& q, const nvme::Sqe& sqe, void* data = nullptr, uint32_t len = 0) {
    auto c = q.Run(sqe, data, len);
    EXPECT_THAT(c, IsOk());
    return c.ok() ? *c : Completion{};
  }
  std::vector<uint8_t> GetLog(TestQueue& q, nvme::LogPageId lid, uint64_t offset, uint32_t len,
                              uint8_t lsp = 0) {
    std::vector<uint8_t> buf(len);
    Completion c =
        Run(q, nvme::BuildGetLogPage(lid, 0xFFFFFFFF, offset, len, lsp), buf.data(), len);
    EXPECT_TRUE(c.ok()) << "status " << c.status();
    return buf;
  }

  std::unique_ptr<Target> target_;
  std::vector<uint16_t> ports_;
};

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

TEST_F(TargetTest, IdentifyControllerNamespacesAndDescriptors) {
  TargetConfig c = BaseConfig();
  c.subsystems[0].namespaces[0].eui64 = std::array<uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8};
  c.dsm_range_limit = 128;
  c.dsm_range_size_limit = 1 << 16;
  Start(c);
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  auto ctrl = nvme::ParseIdentifyController(
      Identify(*s.admin, nvme::IdentifyCns::kController, 0).data(), 4096);
  ASSERT_THAT(ctrl, IsOk());
  EXPECT_EQ(ctrl->cntlid, s.admin->cntlid());
  EXPECT_EQ(ctrl->subnqn, kNqn);
  EXPECT_EQ(ctrl->version, 0x00020000u);
  EXPECT_EQ(ctrl->cntrltype, 1);
  EXPECT_EQ(ctrl->nn, 2u);
  EXPECT_EQ(ctrl->mdts, 8);
  EXPECT_TRUE(ctrl->SupportsWriteZeroes());
  EXPECT_TRUE(ctrl->SupportsDsm());
  EXPECT_TRUE(ctrl->HasVolatileWriteCache());
  EXPECT_TRUE(ctrl->SupportsAnaReporting());
  EXPECT_EQ(ctrl->cmic & 0x2, 0x2);
  EXPECT_EQ(ctrl->InCapsuleDataBytes(), 8192u);
  EXPECT_EQ(ctrl->iorcsz, 1u);
  EXPECT_EQ(ctrl->icdoff, 0);
  EXPECT_EQ(ctrl->anagrpmax, 32u);
  EXPECT_EQ(ctrl->nanagrpid, 32u);
  EXPECT_NE(ctrl->kas, 0);
  EXPECT_EQ(ctrl->sqes, 0x66);
  EXPECT_EQ(ctrl->cqes, 0x44);
  EXPECT_FALSE(ctrl->IsDiscoveryController());

  const uint32_t csi_nvm = 0;
  std::vector<uint8_t> nvm = Identify(*s.admin, static_cast<nvme::IdentifyCns>(0x06), 0, csi_nvm);
  ASSERT_THAT(nvme::ParseIdentifyControllerNvm(nvm.data(), nvm.size(), &*ctrl), IsOk());
  EXPECT_EQ(ctrl->dmrl, 128);
  EXPECT_EQ(ctrl->dmrsl, 1u << 16);

  auto list = nvme::ParseActiveNamespaceList(
      Identify(*s.admin, nvme::IdentifyCns::kActiveNamespaceList, 0).data(), 4096);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(*list, ElementsAre(1u, 2u));
  list = nvme::ParseActiveNamespaceList(
      Identify(*s.admin, nvme::IdentifyCns::kActiveNamespaceList, 1).data(), 4096);
  EXPECT_THAT(*list, ElementsAre(2u));

  auto ns1 = nvme::ParseIdentifyNamespace(
      Identify(*s.admin, nvme::IdentifyCns::kNamespace, 1).data(), 4096);
  ASSERT_THAT(ns1, IsOk());
  EXPECT_EQ(ns1->nsze, kNsBytes / 512);
  EXPECT_EQ(ns1->lba_bytes, 512u);
  EXPECT_EQ(ns1->anagrpid, 1u);
  EXPECT_EQ(ns1->nmic & 1, 1);
  EXPECT_EQ(ns1->nguid, DeriveNguid(kNqn, 1));
  EXPECT_EQ(ns1->eui64, (std::array<uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8}));
  auto ns2 = nvme::ParseIdentifyNamespace(
      Identify(*s.admin, nvme::IdentifyCns::kNamespace, 2).data(), 4096);
  ASSERT_THAT(ns2, IsOk());
  EXPECT_EQ(ns2->nsze, kNsBytes / 4096);
  EXPECT_EQ(ns2->lba_bytes, 4096u);
  EXPECT_EQ(ns2->anagrpid, 2u);

  auto ids = nvme::ParseNamespaceIdDescriptors(
      Identify(*s.admin, nvme::IdentifyCns::kNamespaceIdDescriptors, 2).data(), 4096);
  ASSERT_THAT(ids, IsOk());
  ASSERT_TRUE(ids->nguid && ids->uuid && ids->csi);
  EXPECT_FALSE(ids->eui64);
  EXPECT_EQ(*ids->nguid, DeriveNguid(kNqn, 2));
  EXPECT_EQ(*ids->uuid, DeriveUuid(kNqn, 2));
  EXPECT_EQ(*ids->csi, 0);
  EXPECT_NE(DeriveNguid(kNqn, 1), DeriveNguid(kNqn, 2));

  std::vector<uint8_t> buf(4096);
  Completion bad =
      Run(*s.admin, nvme::BuildIdentify(nvme::IdentifyCns::kNamespace, 3), buf.data(), 4096);
  EXPECT_EQ(bad.sc(), nvme::kScInvalidNamespace);
  EXPECT_TRUE(bad.dnr());
  bad = Run(*s.admin, nvme::BuildIdentify(nvme::IdentifyCns::kController, 0), buf.data(), 512);
  EXPECT_EQ(bad.sc(), 0x0F);  // Data SGL Length Invalid
}

TEST_F(TargetTest, ConnectRejectsWrongSubsystemHostAndController) {
  TargetConfig c = BaseConfig();
  SubsystemConfig locked;
  locked.nqn = "nqn.2026-01.io.nvmf-ublk:locked";
  locked.allowed_hosts = {"nqn.2014-08.org.nvmexpress:uuid:someone-else"};
  NamespaceConfig ns;
  ns.size_bytes = 1 << 20;
  locked.namespaces = {ns};
  c.subsystems.push_back(locked);
  Start(c);
  auto connect = [&](const std::string& nqn, uint16_t qid, uint16_t cntlid,
                     const std::string& hostnqn = testing::kHostNqn) -> nvme::Cqe {
    auto raw = RawConnection::Connect(ports_[0]);
    EXPECT_THAT(raw, IsOk());
    EXPECT_THAT((*raw)->Handshake(), IsOk());
    auto cqe = (*raw)->ConnectQueue(nqn, qid, cntlid, 0, hostnqn);
    EXPECT_THAT(cqe, IsOk());
    return cqe.ok() ? *cqe : nvme::Cqe{};
  };
  auto status = [](const nvme::Cqe& cqe) { return static_cast<uint16_t>(cqe.status.get() >> 1); };

  nvme::Cqe cqe = connect("nqn.2026-01.io.nvmf-ublk:nope", 0, 0xFFFF);
  EXPECT_EQ(status(cqe),
            nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectInvalidParameters, true));
  EXPECT_EQ(cqe.dw0.get(), (1u << 16) | 256u);  // IATTR: Connect data, IPO: SUBNQN

  cqe = connect(locked.nqn, 0, 0xFFFF);
  EXPECT_EQ(status(cqe),
            nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectInvalidHost, true));
  EXPECT_EQ(cqe.dw0.get(), (1u << 16) | 512u);  // HOSTNQN

  // An empty host NQN (SPDK's initiator sends one unless told otherwise): accepted where any host
  // may connect (as nvmet and SPDK's target do), refused where hosts are listed; a malformed one
  // is refused everywhere.
  EXPECT_EQ(status(connect(kNqn, 0, 0xFFFF, "")), 0);
  EXPECT_EQ(status(connect(locked.nqn, 0, 0xFFFF, "")),
            nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectInvalidHost, true));
  EXPECT_EQ(status(connect(kNqn, 0, 0xFFFF, "not an nqn")),
            nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectInvalidParameters, true));

  cqe = connect(kNqn, 1, 0x1234);  // I/O queue of a controller that does not exist
  EXPECT_EQ(status(cqe),
            nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectInvalidParameters, true));
  EXPECT_EQ(cqe.dw0.get(), (1u << 16) | 16u);  // CNTLID

  cqe = connect(kNqn, 0, 5);  // static controller model is not offered
  EXPECT_EQ(cqe.dw0.get(), (1u << 16) | 16u);

  cqe = connect(kNqn, 0, 0xFFFF);
  EXPECT_EQ(status(cqe), 0);
  EXPECT_NE(cqe.dw0.get() & 0xFFFF, 0u);

  // Through the host queue the rejection is a Connect failure carrying the NVMe status.
  auto q = TestQueue::Connect(ports_[0], QueueOptions("nqn.2026-01.io.nvmf-ublk:nope"));
  ASSERT_FALSE(q.ok());
  auto nvme_status = nvme::NvmeStatusOf(q.status());
  ASSERT_TRUE(nvme_status.has_value()) << q.status();
  EXPECT_EQ(nvme_status->sc(), nvme::kScConnectInvalidParameters);
}

TEST_F(TargetTest, NumberOfQueuesLimitsIoConnects) {
  TargetConfig c = BaseConfig();
  c.max_io_queues = 4;
  Start(c);
  Session s = Connect(0);
  Completion set = Run(*s.admin, nvme::BuildSetNumberOfQueues(8));
  EXPECT_TRUE(set.ok());
  EXPECT_EQ(nvme::GrantedQueueCount(set.cqe), 4u);
  Run(*s.admin, nvme::BuildSetNumberOfQueues(2));
  EXPECT_EQ(Run(*s.admin, nvme::BuildGetFeatures(nvme::FeatureId::kNumberOfQueues)).cqe.dw0.get(),
            0x00010001u);
  auto opts = QueueOptions(kNqn, 2, s.admin->cntlid());
  auto q2 = TestQueue::Connect(ports_[0], opts);
  EXPECT_THAT(q2, IsOk());
  opts.qid = 3;  // above the 2 granted
  EXPECT_FALSE(TestQueue::Connect(ports_[0], opts).ok());
  opts.qid = 2;  // already connected
  EXPECT_FALSE(TestQueue::Connect(ports_[0], opts).ok());
}

TEST_F(TargetTest, WriteReadInCapsuleAndThroughSeveralR2ts) {
  TargetConfig c = BaseConfig();
  c.transport.r2t_chunk = 32 * 1024;
  Start(c);
  tcp::HostQueueOptions io = QueueOptions(kNqn);
  io.maxr2t = 4;
  Session s = Connect(1, io);
  ASSERT_TRUE(s.admin);

  // 4 KiB fits in the 8 KiB in-capsule limit: no R2T.
  std::vector<uint8_t> small = Pattern(4096, 1);
  const uint64_t r2ts0 = target_->Stats().r2ts;
  EXPECT_TRUE(Run(s.io0(), nvme::BuildWrite(1, 8, 8, false), small.data(), 4096).ok());
  EXPECT_EQ(target_->Stats().r2ts, r2ts0);

  // 128 KiB: four 32 KiB R2Ts.
  std::vector<uint8_t> big = Pattern(128 * 1024, 2);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildWrite(1, 1000, 256, true), big.data(), 128 * 1024).ok());
  EXPECT_EQ(target_->Stats().r2ts, r2ts0 + 4);

  std::vector<uint8_t> back(4096);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildRead(1, 8, 8), back.data(), 4096).ok());
  EXPECT_EQ(back, small);
  back.assign(128 * 1024, 0);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildRead(1, 1000, 256), back.data(), 128 * 1024).ok());
  EXPECT_EQ(back, big);

  std::vector<uint8_t> direct(4096);
  ASSERT_THAT(target_->ReadNamespace(kNqn, 1, 8 * 512, direct), IsOk());
  EXPECT_EQ(direct, small);
  auto counters = target_->Counters(kNqn, 1);
  ASSERT_THAT(counters, IsOk());
  EXPECT_EQ(counters->writes, 2u);
  EXPECT_EQ(counters->fua_writes, 1u);
  EXPECT_EQ(counters->reads, 2u);
  EXPECT_EQ(counters->bytes_written, 132u * 1024);
  EXPECT_EQ(counters->bytes_read, 132u * 1024);

  // 4 KiB blocks on namespace 2.
  std::vector<uint8_t> blocks = Pattern(3 * 4096, 3);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildWrite(2, 5, 3, false), blocks.data(), 3 * 4096).ok());
  back.assign(3 * 4096, 0);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildRead(2, 5, 3), back.data(), 3 * 4096).ok());
  EXPECT_EQ(back, blocks);
}

TEST_F(TargetTest, SmallMaxH2CDataCpdaHpdaAndDigests) {
  TargetConfig c = BaseConfig();
  c.transport.maxh2cdata = 4096;
  c.transport.cpda = 3;
  c.transport.c2h_chunk = 8192;
  Start(c);
  tcp::HostQueueOptions io = QueueOptions(kNqn);
  io.header_digest = true;
  io.data_digest = true;
  io.hpda = 2;
  io.in_capsule_data = 0;
  Session s = Connect(1, io);
  ASSERT_TRUE(s.admin);
  EXPECT_EQ(s.io0().queue().negotiated().maxh2cdata, 4096u);
  EXPECT_EQ(s.io0().queue().negotiated().cpda_bytes, 16u);
  EXPECT_TRUE(s.io0().queue().negotiated().header_digest);
  EXPECT_TRUE(s.io0().queue().negotiated().data_digest);

  const TransportStats before = target_->Stats();
  std::vector<uint8_t> data = Pattern(64 * 1024, 4);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildWrite(1, 0, 128, false), data.data(), 64 * 1024).ok());
  EXPECT_EQ(target_->Stats().h2c_data, before.h2c_data + 16);
  std::vector<uint8_t> back(64 * 1024);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildRead(1, 0, 128), back.data(), 64 * 1024).ok());
  EXPECT_EQ(back, data);
  EXPECT_EQ(target_->Stats().c2h_data, before.c2h_data + 8);
}

TEST_F(TargetTest, FlushWriteZeroesAndDeallocate) {
  Start(BaseConfig());
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildFlush(1)).ok());
  EXPECT_EQ(target_->Counters(kNqn, 1)->flushes, 1u);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildFlush(0xFFFFFFFF)).ok());
  EXPECT_EQ(target_->Counters(kNqn, 1)->flushes, 2u);
  EXPECT_EQ(target_->Counters(kNqn, 2)->flushes, 1u);

  std::vector<uint8_t> data = Pattern(64 * 512, 5);
  ASSERT_TRUE(Run(s.io0(), nvme::BuildWrite(1, 0, 64, false), data.data(), 64 * 512).ok());
  EXPECT_TRUE(Run(s.io0(), nvme::BuildWriteZeroes(1, 4, 4, false, false)).ok());
  EXPECT_TRUE(Run(s.io0(), nvme::BuildWriteZeroes(1, 12, 4, true, false)).ok());
  nvme::DsmRange ranges[2]{};
  ranges[0].slba.set(20);
  ranges[0].nlb.set(2);
  ranges[1].slba.set(40);
  ranges[1].nlb.set(8);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildDatasetManagement(1, 2, true), ranges, sizeof(ranges)).ok());
  std::vector<uint8_t> expect = data;
  for (auto [lba, n] : {std::pair{4, 4}, {12, 4}, {20, 2}, {40, 8}}) {
    std::fill_n(expect.begin() + lba * 512, n * 512, 0);
  }
  std::vector<uint8_t> back(64 * 512);
  EXPECT_TRUE(Run(s.io0(), nvme::BuildRead(1, 0, 64), back.data(), 64 * 512).ok());
  EXPECT_EQ(back, expect);
  auto counters = target_->Counters(kNqn, 1);
  EXPECT_EQ(counters->write_zeroes, 2u);
  EXPECT_EQ(counters->deallocates, 1u);
}

TEST_F(TargetTest, LbaRangeNamespaceAndOpcodeErrors) {
  Start(BaseConfig());
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  const uint64_t blocks = kNsBytes / 512;
  std::vector<uint8_t> buf(1024);
  Completion c = Run(s.io0(), nvme::BuildRead(1, blocks - 1, 2), buf.data(), 1024);
  EXPECT_EQ(c.sc(), nvme::kScLbaOutOfRange);
  EXPECT_TRUE(c.dnr());
  c = Run(s.io0(), nvme::BuildWriteZeroes(1, blocks, 1, false, false));
  EXPECT_EQ(c.sc(), nvme::kScLbaOutOfRange);
  c = Run(s.io0(), nvme::BuildRead(9, 0, 1), buf.data(), 512);
  EXPECT_EQ(c.sc(), nvme::kScInvalidNamespace);
  EXPECT_TRUE(c.dnr());
  nvme::Sqe odd = nvme::BuildFlush(1);
  odd.opcode = 0x7C;  // no data, unknown
  c = Run(s.io0(), odd);
  EXPECT_EQ(c.sc(), nvme::kScInvalidOpcode);
  c = Run(s.io0(), nvme::BuildRead(1, blocks - 1, 1), buf.data(), 512);
  EXPECT_TRUE(c.ok());
}

TEST_F(TargetTest, AbortOfACommandNotHeldReportsNotAborted) {
  Start(BaseConfig());
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  Completion c = Run(*s.admin, nvme::BuildAbort(1, 0x1234));
  EXPECT_TRUE(c.ok());
  EXPECT_FALSE(nvme::AbortSucceeded(c.cqe));
}

TEST_F(TargetTest, DiscoveryLogListsSubsystemPortsAndReferralsWithGeneration) {
  TargetConfig c = BaseConfig(2);
  c.ports[1].address = "0.0.0.0";
  c.ports[1].port_id = 7;
  c.referrals.push_back(ReferralConfig{"10.0.0.2", 4420, 3});
  Start(c);
  auto admin = TestQueue::Connect(ports_[0], QueueOptions(nvme::kDiscoveryNqn));
  ASSERT_THAT(admin, IsOk());
  TestQueue& q = **admin;
  ASSERT_THAT(testing::EnableController(q), IsOk());
  auto ctrl =
      nvme::ParseIdentifyController(Identify(q, nvme::IdentifyCns::kController, 0).data(), 4096);
  ASSERT_THAT(ctrl, IsOk());
  EXPECT_TRUE(ctrl->IsDiscoveryController());
  EXPECT_EQ(ctrl->cntrltype, 2);
  EXPECT_EQ(ctrl->nn, 0u);

  auto read_log = [&]() {
    nvme::DiscoveryLogReader reader;
    while (!reader.done() && !reader.failed()) {
      const auto r = reader.NextRead();
      std::vector<uint8_t> data = GetLog(q, nvme::LogPageId::kDiscovery, r.offset, r.length);
      EXPECT_THAT(reader.OnData(data.data(), data.size()), IsOk());
    }
    return reader;
  };
  nvme::DiscoveryLogReader log = read_log();
  ASSERT_TRUE(log.done());
  const uint64_t gen = log.generation();
  ASSERT_EQ(log.entries().size(), 3u);
  const nvme::DiscoveryEntry& e0 = log.entries()[0];
  EXPECT_EQ(e0.trtype, nvme::kTrtypeTcp);
  EXPECT_EQ(e0.adrfam, nvme::kAdrfamIpv4);
  EXPECT_EQ(e0.subtype, nvme::kSubtypeNvme);
  EXPECT_EQ(e0.subnqn, kNqn);
  EXPECT_EQ(e0.traddr, "127.0.0.1");
  EXPECT_EQ(e0.trsvcid, std::to_string(ports_[0]));
  EXPECT_EQ(e0.portid, 1);
  EXPECT_EQ(e0.cntlid, 0xFFFF);
  const nvme::DiscoveryEntry& e1 = log.entries()[1];
  EXPECT_EQ(e1.traddr, "127.0.0.1");  // wildcard port: the connection's local address
  EXPECT_EQ(e1.trsvcid, std::to_string(ports_[1]));
  EXPECT_EQ(e1.portid, 7);
  const nvme::DiscoveryEntry& ref = log.entries()[2];
  EXPECT_TRUE(ref.IsReferral());
  EXPECT_EQ(ref.subnqn, nvme::kDiscoveryNqn);
  EXPECT_EQ(ref.traddr, "10.0.0.2");
  EXPECT_EQ(ref.trsvcid, "4420");
  EXPECT_EQ(ref.portid, 3);

  // Offset reads return the matching slice of the log.
  std::vector<uint8_t> whole = GetLog(q, nvme::LogPageId::kDiscovery, 0, 4096);
  std::vector<uint8_t> second = GetLog(q, nvme::LogPageId::kDiscovery, 2048, 1024);
  EXPECT_TRUE(std::equal(second.begin(), second.end(), whole.begin() + 2048));

  // A referral change bumps the generation and raises a discovery log change event.
  EXPECT_TRUE(Run(q, nvme::BuildSetFeatures(nvme::FeatureId::kAsyncEventConfig,
                                            nvme::kAecDiscoveryLogChange))
                  .ok());
  auto aer = q.Submit(nvme::BuildAsyncEventRequest());
  ASSERT_THAT(aer, IsOk());
  EXPECT_FALSE(q.Wait(*aer, 50).ok());  // nothing to report yet
  ASSERT_THAT(target_->AddReferral(ReferralConfig{"fe80::1", 8009, 0}), IsOk());
  auto event = q.Wait(*aer, 2000);
  ASSERT_THAT(event, IsOk());
  const nvme::AsyncEvent ev = nvme::ParseAsyncEvent(event->cqe);
  EXPECT_EQ(ev.type, nvme::kAerTypeNotice);
  EXPECT_EQ(ev.info, nvme::kAerNoticeDiscoveryLogChange);
  EXPECT_EQ(ev.log_page, 0x70);
  log = read_log();
  EXPECT_EQ(log.generation(), gen + 1);
  ASSERT_EQ(log.entries().size(), 4u);
  EXPECT_EQ(log.entries()[3].adrfam, nvme::kAdrfamIpv6);
  ASSERT_THAT(target_->RemoveReferral("10.0.0.2", 4420), IsOk());
  EXPECT_EQ(read_log().generation(), gen + 2);

  // The discovery controller has no ANA log and no I/O queues.
  std::vector<uint8_t> buf(4096);
  EXPECT_EQ(Run(q, nvme::BuildGetLogPage(nvme::LogPageId::kAna, 0, 0, 4096), buf.data(), 4096).sc(),
            nvme::kScInvalidLogPage);
}

TEST_F(TargetTest, AnaLogStatesAndChangeEvent) {
  Start(BaseConfig());
  Session s = Connect();
  ASSERT_TRUE(s.admin);
  TestQueue& admin = *s.admin;
  EXPECT_TRUE(
      Run(admin, nvme::BuildSetFeatures(nvme::FeatureId::kAsyncEventConfig, nvme::kAecAnaChange))
          .ok());
  auto aer = admin.Submit(nvme::BuildAsyncEventRequest());
  ASSERT_THAT(aer, IsOk());

  std::vector<uint8_t> data = GetLog(admin, nvme::LogPageId::kAna, 0, 4096);
  auto ana = nvme::ParseAnaLog(data.data(), data.size());
  ASSERT_THAT(ana, IsOk());
  ASSERT_EQ(ana->groups.size(), 2u);
  EXPECT_EQ(ana->groups[0].grpid, 1u);
  EXPECT_EQ(ana->groups[0].state, nvme::kAnaOptimized);
  EXPECT_THAT(ana->groups[0].nsids, ElementsAre(1u));
  EXPECT_THAT(ana->groups[1].nsids, ElementsAre(2u));
  const uint64_t chgcnt = ana->chgcnt;

  ASSERT_THAT(target_->SetAnaState(0, 2, AnaState::kInaccessible), IsOk());
  auto event = admin.Wait(*aer, 2000);
  ASSERT_THAT(event, IsOk());
  const nvme::AsyncEvent ev = nvme::ParseAsyncEvent(event->cqe);
  EXPECT_EQ(ev.type, nvme::kAerTypeNotice);
  EXPECT_EQ(ev.info, nvme::kAerNoticeAnaChange);
  EXPECT_EQ(ev.log_page, 0x0C);

  data = GetLog(admin, nvme::LogPageId::kAna, 0, 4096, nvme::kAnaLspRgo);
  ana = nvme::ParseAnaLog(data.data(), data.size(), /*with_nsids=*/false);
  ASSERT_THAT(ana, IsOk());
  EXPECT_EQ(ana->chgcnt, chgcnt + 1);
  EXPECT_EQ(ana->groups[1].state, nvme::kAnaInaccessible);
  EXPECT_EQ(ana->groups[1].nnsids, 0u);
  EXPECT_EQ(target_->GetAnaState(0, 2), AnaState::kInaccessible);

  std::vector<uint8_t> buf(4096);
  Completion c = Run(s.io0(), nvme::BuildRead(2, 0, 1), buf.data(), 4096);
  EXPECT_EQ(c.sct(), nvme::kSctPath);
  EXPECT_EQ(c.sc(), nvme::kScAnaInaccessible);
  EXPECT_FALSE(c.dnr());
  EXPECT_TRUE(Run(s.io0(), nvme::BuildRead(1, 0, 1), buf.data(), 512).ok());
  ASSERT_THAT(target_->SetAnaState(0, 2, AnaState::kChange), IsOk());
  EXPECT_EQ(Run(s.io0(), nvme::BuildRead(2, 0, 1), buf.data(), 4096).sc(), nvme::kScAnaTransition);
  ASSERT_THAT(target_->SetAnaState(0, 2, AnaState::kPersistentLoss), IsOk());
  EXPECT_EQ(Run(s.io0(), nvme::BuildRead(2, 0, 1), buf.data(), 4096).sc(),
            nvme::kScAnaPersistentLoss);
  ASSERT_THAT(target_->SetAnaState(0, 2, AnaState::kNonOptimized), IsOk());
  EXPECT_TRUE(Run(s.io0(), nvme::BuildRead(2, 0, 1), buf.data(), 4096).ok());
  EXPECT_FALSE(target_->SetAnaState(0, 99, AnaState::kOptimized).ok());
  EXPECT_GE(target_->Stats().events, 1u);
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
