#include "nvme/commands.h"

#include <cstring>
#include <vector>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::nvme {
namespace {

using ::nvmf_ublk::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

std::vector<uint8_t> Bytes(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  return std::vector<uint8_t>(b, b + n);
}

// Expected SQE image: all zero except the listed bytes.
std::vector<uint8_t> Image(std::initializer_list<std::pair<int, uint8_t>> set) {
  std::vector<uint8_t> v(64, 0);
  for (auto [off, val] : set) v[off] = val;
  return v;
}

TEST(Commands, ConnectAdminKnownBytes) {
  // Connect, QID 0, 32 entries, KATO 5000 ms, CATTR 0 (NVMe-oF 1.1 Figure 20).
  Sqe sqe = BuildConnect(0, 32, 5000, 0);
  EXPECT_THAT(
      Bytes(&sqe, 64),
      ElementsAreArray(Image({{0, 0x7F}, {1, 0x40}, {4, 0x01}, {44, 31}, {48, 0x88}, {49, 0x13}})));
  EXPECT_EQ(DirectionOf(sqe), DataDirection::kHostToController);
  EXPECT_STREQ(CommandName(sqe, true), "Connect");
}

TEST(Commands, ConnectIoQueueKnownBytes) {
  Sqe sqe = BuildConnect(3, 128, 0, kConnectAttrDisableSqFlowControl);
  EXPECT_THAT(
      Bytes(&sqe, 64),
      ElementsAreArray(Image({{0, 0x7F}, {1, 0x40}, {4, 0x01}, {42, 3}, {44, 127}, {46, 0x04}})));
}

TEST(Commands, ConnectData) {
  uint8_t hostid[16];
  for (int i = 0; i < 16; ++i) hostid[i] = static_cast<uint8_t>(i + 1);
  ASSERT_OK_AND_ASSIGN(ConnectData d, BuildConnectData(hostid, 0xFFFF, "nqn.2026-01.io.test:sub1",
                                                       "nqn.2014-08.org.nvmexpress:uuid:1234"));
  const auto* b = reinterpret_cast<const uint8_t*>(&d);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[15], 16);
  EXPECT_EQ(b[16], 0xFF);
  EXPECT_EQ(b[17], 0xFF);
  EXPECT_STREQ(reinterpret_cast<const char*>(b + 256), "nqn.2026-01.io.test:sub1");
  EXPECT_STREQ(reinterpret_cast<const char*>(b + 512), "nqn.2014-08.org.nvmexpress:uuid:1234");
  EXPECT_EQ(b[256 + 255], 0);
  EXPECT_EQ(b[1023], 0);
}

TEST(Commands, ConnectDataRejectsBadNqns) {
  uint8_t hostid[16] = {};
  EXPECT_THAT(BuildConnectData(hostid, 1, "", "nqn.x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subsystem NQN is empty")));
  EXPECT_THAT(
      BuildConnectData(hostid, 1, "iqn.2001-04.com.example", "nqn.x"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not start with 'nqn.'")));
  EXPECT_THAT(BuildConnectData(hostid, 1, "nqn." + std::string(220, 'a'), "nqn.x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than 223")));
  EXPECT_THAT(BuildConnectData(hostid, 1, "nqn.ok", "nqn.bad\nline"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("host NQN")));
  // Exactly 223 bytes is allowed.
  EXPECT_TRUE(BuildConnectData(hostid, 1, "nqn." + std::string(219, 'a'), "nqn.x").ok());
}

TEST(Commands, ConnectResult) {
  Cqe cqe;
  std::memset(&cqe, 0, sizeof(cqe));
  cqe.dw0.set(0x00010005);
  ConnectResult r = ParseConnectResult(cqe);
  EXPECT_EQ(r.cntlid, 5);
  EXPECT_EQ(r.authreq, 1);
}

TEST(Commands, AuthSendReceiveKnownBytes) {
  // The kernel host's DH-HMAC-CHAP commands: SECP E9h, SPSP0 = SPSP1 = 01h.
  Sqe send = BuildAuthSend(0xE9, 1, 1, 72);
  EXPECT_THAT(Bytes(&send, 64),
              ElementsAreArray(Image(
                  {{0, 0x7F}, {1, 0x40}, {4, 0x05}, {41, 1}, {42, 1}, {43, 0xE9}, {44, 72}})));
  EXPECT_EQ(DirectionOf(send), DataDirection::kHostToController);
  Sqe recv = BuildAuthReceive(0xE9, 1, 1, 4096);
  EXPECT_THAT(Bytes(&recv, 64),
              ElementsAreArray(Image(
                  {{0, 0x7F}, {1, 0x40}, {4, 0x06}, {41, 1}, {42, 1}, {43, 0xE9}, {45, 0x10}})));
  EXPECT_EQ(DirectionOf(recv), DataDirection::kControllerToHost);
}

TEST(Commands, PropertyGetSetKnownBytes) {
  Sqe get_cap = BuildPropertyGet(Property::kCap);
  EXPECT_THAT(Bytes(&get_cap, 64),
              ElementsAreArray(Image({{0, 0x7F}, {1, 0x40}, {4, 0x04}, {40, 1}})));
  EXPECT_EQ(DirectionOf(get_cap), DataDirection::kNone);
  Sqe get_csts = BuildPropertyGet(Property::kCsts);
  EXPECT_THAT(Bytes(&get_csts, 64),
              ElementsAreArray(Image({{0, 0x7F}, {1, 0x40}, {4, 0x04}, {44, 0x1C}})));
  Sqe set_cc = BuildPropertySet(Property::kCc, 0x00460001);
  EXPECT_THAT(Bytes(&set_cc, 64),
              ElementsAreArray(
                  Image({{0, 0x7F}, {1, 0x40}, {4, 0x00}, {44, 0x14}, {48, 0x01}, {50, 0x46}})));
  EXPECT_STREQ(CommandName(set_cc, true), "Property Set");
  Cqe cqe;
  std::memset(&cqe, 0, sizeof(cqe));
  cqe.dw0.set(0x0F0107FF);
  cqe.dw1.set(0x00000020);
  EXPECT_EQ(PropertyValue(cqe), 0x000000200F0107FFull);
  EXPECT_EQ(CapMqes(PropertyValue(cqe)), 2048u);
  EXPECT_EQ(CapTimeoutMs(PropertyValue(cqe)), 15u * 500);
}

TEST(Commands, IdentifyKnownBytes) {
  Sqe ctrl = BuildIdentify(IdentifyCns::kController, 0);
  EXPECT_THAT(Bytes(&ctrl, 64), ElementsAreArray(Image({{0, 0x06}, {1, 0x40}, {40, 0x01}})));
  Sqe ns = BuildIdentify(IdentifyCns::kNamespaceIdDescriptors, 7);
  EXPECT_THAT(Bytes(&ns, 64), ElementsAreArray(Image({{0, 0x06}, {1, 0x40}, {4, 7}, {40, 0x03}})));
  EXPECT_EQ(DirectionOf(ns), DataDirection::kControllerToHost);
  EXPECT_STREQ(CommandName(ns, true), "Identify");
}

TEST(Commands, GetLogPageKnownBytes) {
  // Discovery log, 4096 bytes at offset 1024: NUMD = 1023 = 0x3FF.
  Sqe sqe = BuildGetLogPage(LogPageId::kDiscovery, 0, 1024, 4096);
  EXPECT_THAT(Bytes(&sqe, 64),
              ElementsAreArray(
                  Image({{0, 0x02}, {1, 0x40}, {40, 0x70}, {42, 0xFF}, {43, 0x03}, {49, 0x04}})));
  // ANA log with RAE, 256 KiB + 4: NUMD = 65536 → NUMDL 0, NUMDU 1; offset above 4 GiB.
  Sqe ana = BuildGetLogPage(LogPageId::kAna, 0xFFFFFFFF, 0x100000004ull, 262148, 0, true);
  EXPECT_EQ(ana.cdw10.get(), 0x0Cu | (1u << 15) | (0u << 16));
  EXPECT_EQ(ana.cdw11.get(), 1u);
  EXPECT_EQ(ana.cdw12.get(), 4u);
  EXPECT_EQ(ana.cdw13.get(), 1u);
}

TEST(Commands, FeaturesKeepAliveAerAbort) {
  Sqe nq = BuildSetNumberOfQueues(4);
  EXPECT_THAT(Bytes(&nq, 64),
              ElementsAreArray(Image({{0, 0x09}, {1, 0x40}, {40, 0x07}, {44, 3}, {46, 3}})));
  Cqe cqe;
  std::memset(&cqe, 0, sizeof(cqe));
  cqe.dw0.set((7u << 16) | 2u);  // 3 SQs, 8 CQs granted
  EXPECT_EQ(GrantedQueueCount(cqe), 3u);
  Sqe ka = BuildKeepAlive();
  EXPECT_THAT(Bytes(&ka, 64), ElementsAreArray(Image({{0, 0x18}, {1, 0x40}})));
  EXPECT_STREQ(CommandName(ka, true), "Keep Alive");
  Sqe aer = BuildAsyncEventRequest();
  EXPECT_THAT(Bytes(&aer, 64), ElementsAreArray(Image({{0, 0x0C}, {1, 0x40}})));
  Sqe ab = BuildAbort(2, 0x1234);
  EXPECT_THAT(Bytes(&ab, 64),
              ElementsAreArray(Image({{0, 0x08}, {1, 0x40}, {40, 2}, {42, 0x34}, {43, 0x12}})));
  cqe.dw0.set(0);
  EXPECT_TRUE(AbortSucceeded(cqe));
  cqe.dw0.set(1);
  EXPECT_FALSE(AbortSucceeded(cqe));
}

TEST(Commands, AsyncEventDecode) {
  Cqe cqe;
  std::memset(&cqe, 0, sizeof(cqe));
  cqe.dw0.set(0x000C0302);  // notice, ANA change, log 0Ch
  AsyncEvent e = ParseAsyncEvent(cqe);
  EXPECT_EQ(e.type, kAerTypeNotice);
  EXPECT_EQ(e.info, kAerNoticeAnaChange);
  EXPECT_EQ(e.log_page, 0x0C);
  EXPECT_STREQ(AsyncEventName(e), "ANA change");
  cqe.dw0.set(0x0070F002);
  EXPECT_STREQ(AsyncEventName(ParseAsyncEvent(cqe)), "discovery log page change");
}

TEST(Commands, ReadWriteKnownBytes) {
  // Read NSID 1, SLBA 0x1_0000_0002, 8 blocks → NLB 7.
  Sqe rd = BuildRead(1, 0x100000002ull, 8);
  EXPECT_THAT(Bytes(&rd, 64),
              ElementsAreArray(Image({{0, 0x02}, {1, 0x40}, {4, 1}, {40, 2}, {44, 1}, {48, 7}})));
  EXPECT_EQ(DirectionOf(rd), DataDirection::kControllerToHost);
  EXPECT_STREQ(CommandName(rd, false), "Read");
  Sqe wr = BuildWrite(2, 16, 65536, true);
  EXPECT_THAT(Bytes(&wr, 64),
              ElementsAreArray(Image(
                  {{0, 0x01}, {1, 0x40}, {4, 2}, {40, 16}, {48, 0xFF}, {49, 0xFF}, {51, 0x40}})));
  EXPECT_EQ(DirectionOf(wr), DataDirection::kHostToController);
  Sqe fl = BuildFlush(1);
  EXPECT_THAT(Bytes(&fl, 64), ElementsAreArray(Image({{0, 0x00}, {1, 0x40}, {4, 1}})));
  EXPECT_EQ(DirectionOf(fl), DataDirection::kNone);
  Sqe wz = BuildWriteZeroes(1, 0, 1, true, false);
  EXPECT_THAT(Bytes(&wz, 64), ElementsAreArray(Image({{0, 0x08}, {1, 0x40}, {4, 1}, {51, 0x02}})));
  Sqe dsm = BuildDatasetManagement(1, 3, true);
  EXPECT_THAT(Bytes(&dsm, 64),
              ElementsAreArray(Image({{0, 0x09}, {1, 0x40}, {4, 1}, {40, 2}, {44, 0x04}})));
  EXPECT_EQ(DirectionOf(dsm), DataDirection::kHostToController);
  EXPECT_STREQ(CommandName(dsm, false), "Dataset Management");
  EXPECT_STREQ(CommandName(dsm, true), "Set Features");
}

}  // namespace
}  // namespace nvmf_ublk::nvme
