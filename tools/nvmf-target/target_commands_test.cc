// Integration tests of the target's commands over loopback TCP: identify, connect, I/O,
// discovery and ANA logs, through testing::TestQueue against a Target in this process.
#include <cstring>

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

}  // namespace
}  // namespace nvmf_ublk::target
