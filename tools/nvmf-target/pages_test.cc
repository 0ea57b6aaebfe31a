// The target's Identify and log pages, read back with the initiator's own parsers.
#include "pages.h"

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/identify.h"
#include "nvme/log_pages.h"

namespace nvmf_ublk::target {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::testing::ElementsAre;

constexpr char kNqn[] = "nqn.2026-01.io.nvmf-ublk:pages";

TEST(PagesTest, IdentifyControllerRoundTrips) {
  ControllerIdentity id;
  id.cntlid = 0x42;
  id.subnqn = kNqn;
  id.serial = "SN123";
  id.model = "model";
  id.firmware = "1.2";
  id.mdts = 5;
  id.maxcmd = 64;
  id.nn = 3;
  id.in_capsule_data = 4096;
  id.ana_group_max = 8;
  id.vwc = true;
  std::vector<uint8_t> page(kIdentifySize, 0xEE);
  FillIdentifyController(id, page.data());
  auto info = nvme::ParseIdentifyController(page.data(), page.size());
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->cntlid, 0x42);
  EXPECT_EQ(info->serial, "SN123");
  EXPECT_EQ(info->model, "model");
  EXPECT_EQ(info->firmware, "1.2");
  EXPECT_EQ(info->subnqn, kNqn);
  EXPECT_EQ(info->mdts, 5);
  EXPECT_EQ(info->maxcmd, 64);
  EXPECT_EQ(info->nn, 3u);
  EXPECT_EQ(info->InCapsuleDataBytes(), 4096u);
  EXPECT_EQ(info->anagrpmax, 8u);
  EXPECT_EQ(info->cntrltype, 1);
  EXPECT_TRUE(info->SupportsAnaReporting());
  EXPECT_TRUE(info->HasVolatileWriteCache());
  EXPECT_EQ(info->oaes & (1u << 11), 1u << 11);
  EXPECT_EQ(info->sgls & 3u, 1u);

  id.discovery = true;
  id.subnqn = nvme::kDiscoveryNqn;
  FillIdentifyController(id, page.data());
  info = nvme::ParseIdentifyController(page.data(), page.size());
  ASSERT_THAT(info, IsOk());
  EXPECT_TRUE(info->IsDiscoveryController());
  EXPECT_EQ(info->oncs, 0);
  EXPECT_EQ(info->oaes, 1u << 31);
}

TEST(PagesTest, NamespacePagesRoundTrip) {
  Namespace ns(7, 4096, 3, DeriveNguid(kNqn, 7), DeriveUuid(kNqn, 7),
               std::array<uint8_t, 8>{9, 8, 7, 6, 5, 4, 3, 2}, MakeNullBackend(1 << 20));
  std::vector<uint8_t> page(kIdentifySize);
  FillIdentifyNamespace(ns, page.data());
  auto info = nvme::ParseIdentifyNamespace(page.data(), page.size());
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->nsze, 256u);
  EXPECT_EQ(info->lba_bytes, 4096u);
  EXPECT_EQ(info->anagrpid, 3u);
  EXPECT_EQ(info->nvmcap, 1u << 20);
  EXPECT_EQ(info->nguid, DeriveNguid(kNqn, 7));

  FillNamespaceIdDescriptors(ns, page.data());
  auto ids = nvme::ParseNamespaceIdDescriptors(page.data(), page.size());
  ASSERT_THAT(ids, IsOk());
  EXPECT_EQ(*ids->eui64, (std::array<uint8_t, 8>{9, 8, 7, 6, 5, 4, 3, 2}));
  EXPECT_EQ(*ids->uuid, DeriveUuid(kNqn, 7));
  EXPECT_EQ((*ids->uuid)[6] >> 4, 8);  // version 8
  EXPECT_EQ(*ids->csi, 0);
}

TEST(PagesTest, DerivedIdentifiersAreStableAndDistinct) {
  EXPECT_EQ(DeriveNguid(kNqn, 1), DeriveNguid(kNqn, 1));
  EXPECT_NE(DeriveNguid(kNqn, 1), DeriveNguid(kNqn, 2));
  EXPECT_NE(DeriveNguid(kNqn, 1), DeriveNguid("nqn.2026-01.io.other", 1));
  EXPECT_NE(DeriveNguid(kNqn, 1), DeriveUuid(kNqn, 1));
  EXPECT_LE(DeriveSerial(kNqn).size(), 20u);
}

TEST(PagesTest, AnaLogRoundTrips) {
  // Three NSIDs put the second descriptor at a 4-byte (not 8-byte) aligned offset.
  std::vector<AnaGroupState> groups = {{1, AnaState::kOptimized, 0, {1, 2, 3}},
                                       {4, AnaState::kChange, 3, {5}}};
  std::vector<uint8_t> log = BuildAnaLog(9, groups, false);
  auto ana = nvme::ParseAnaLog(log.data(), log.size());
  ASSERT_THAT(ana, IsOk());
  EXPECT_EQ(ana->chgcnt, 9u);
  ASSERT_EQ(ana->groups.size(), 2u);
  EXPECT_THAT(ana->groups[0].nsids, ElementsAre(1u, 2u, 3u));
  EXPECT_EQ(ana->groups[1].grpid, 4u);
  EXPECT_EQ(ana->groups[1].state, nvme::kAnaChange);
  EXPECT_EQ(ana->groups[1].chgcnt, 3u);
  log = BuildAnaLog(9, groups, true);
  EXPECT_EQ(log.size(), 16u + 2 * 32);
  ana = nvme::ParseAnaLog(log.data(), log.size(), false);
  ASSERT_THAT(ana, IsOk());
  EXPECT_EQ(ana->groups[0].nnsids, 0u);
}

TEST(PagesTest, DiscoveryLogRoundTrips) {
  std::vector<DiscoveryRecord> records = {
      {2, 1, 1, kNqn, "127.0.0.1", "4420"},
      {1, 2, 0, nvme::kDiscoveryNqn, "fe80::2", "8009"},
  };
  std::vector<uint8_t> log = BuildDiscoveryLog(5, records);
  auto parsed = nvme::ParseDiscoveryLog(log.data(), log.size());
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->header.genctr, 5u);
  ASSERT_EQ(parsed->entries.size(), 2u);
  EXPECT_EQ(parsed->entries[0].subnqn, kNqn);
  EXPECT_EQ(parsed->entries[0].trsvcid, "4420");
  EXPECT_EQ(parsed->entries[0].trtype, nvme::kTrtypeTcp);
  EXPECT_EQ(parsed->entries[0].cntlid, 0xFFFF);
  EXPECT_TRUE(parsed->entries[1].IsReferral());
  EXPECT_EQ(parsed->entries[1].traddr, "fe80::2");
  EXPECT_EQ(parsed->entries[1].adrfam, nvme::kAdrfamIpv6);
}

}  // namespace
}  // namespace nvmf_ublk::target
