#include "nvme/identify.h"

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "base/endian.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::nvme {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A hand-built data structure image; offsets below are the spec's, not libnvme's.
struct Image {
  explicit Image(size_t n = kIdentifyDataSize) : bytes(n, 0) {}
  // Bounds-checked address of `n` bytes at `off`.
  uint8_t* At(size_t off, size_t n) {
    bytes.at(off + n - 1);
    return &bytes[off];
  }
  Image& U8(size_t off, uint8_t v) {
    *At(off, 1) = v;
    return *this;
  }
  Image& U16(size_t off, uint16_t v) {
    StoreLe16(At(off, 2), v);
    return *this;
  }
  Image& U32(size_t off, uint32_t v) {
    StoreLe32(At(off, 4), v);
    return *this;
  }
  Image& U64(size_t off, uint64_t v) {
    StoreLe64(At(off, 8), v);
    return *this;
  }
  Image& Str(size_t off, const std::string& s) {
    std::memcpy(At(off, s.size()), s.data(), s.size());
    return *this;
  }
  Image& Fill(size_t off, size_t n, uint8_t v) {
    std::memset(At(off, n), v, n);
    return *this;
  }
  const uint8_t* data() const { return bytes.data(); }
  size_t size() const { return bytes.size(); }
  std::vector<uint8_t> bytes;
};

// Identify Controller offsets (Base 2.0 Figure 275, NVMe-oF 1.1 Figure 28).
Image ControllerImage() {
  Image img;
  img.U16(0, 0x1B36)                            // VID
      .U16(2, 0x1AF4)                           // SSVID
      .Fill(4, 20, ' ')                         // SN, space padded
      .Str(4, "SN-0042")                        //
      .Fill(24, 40, ' ')                        // MN
      .Str(24, "nvmf-ublk test target")         //
      .Fill(64, 8, ' ')                         // FR
      .Str(64, "1.2.3")                         //
      .U8(72, 6)                                // RAB
      .U8(73, 0x38)                             // IEEE OUI, little endian
      .U8(74, 0x25)                             //
      .U8(75, 0x00)                             //
      .U8(76, 0x0B)                             // CMIC: multi-port, multi-ctrl, ANA
      .U8(77, 5)                                // MDTS
      .U16(78, 0x0102)                          // CNTLID
      .U32(80, 0x00020000)                      // VER 2.0.0
      .U32(92, 0x00000900)                      // OAES: ns attribute + ANA change
      .U32(96, 0x00000001)                      // CTRATT
      .U8(111, 1)                               // CNTRLTYPE: I/O
      .U16(128, 1)                              // CRDT1
      .U16(130, 20)                             // CRDT2
      .U16(132, 300)                            // CRDT3
      .U16(256, 0x0004)                         // OACS
      .U8(259, 3)                               // AERL
      .U8(261, 0x0E)                            // LPA
      .U16(320, 10)                             // KAS
      .U8(342, 10)                              // ANATT
      .U8(343, 0x47)                            // ANACAP
      .U32(344, 128)                            // ANAGRPMAX
      .U32(348, 64)                             // NANAGRPID
      .U16(386, 1500)                           // CQT (ms)
      .U8(512, 0x66)                            // SQES
      .U8(513, 0x44)                            // CQES
      .U16(514, 128)                            // MAXCMD
      .U32(516, 1024)                           // NN
      .U16(520, 0x010C)                         // ONCS: DSM, Write Zeroes, Copy
      .U16(522, 0x0001)                         // FUSES
      .U8(525, 0x07)                            // VWC
      .U32(536, 0x00100001)                     // SGLS
      .Str(768, "nqn.2026-01.io.test:subsys1")  // SUBNQN
      .U32(1792, 260)                           // IOCCSZ
      .U32(1796, 1)                             // IORCSZ
      .U16(1800, 0)                             // ICDOFF
      .U8(1802, 0)                              // FCATT
      .U8(1803, 1)                              // MSDBD
      .U16(1804, 0x1);                          // OFCS
  return img;
}

TEST(IdentifyController, KnownBytes) {
  Image img = ControllerImage();
  ASSERT_OK_AND_ASSIGN(ControllerInfo c, ParseIdentifyController(img.data(), img.size()));
  EXPECT_EQ(c.vid, 0x1B36);
  EXPECT_EQ(c.ssvid, 0x1AF4);
  EXPECT_EQ(c.serial, "SN-0042");
  EXPECT_EQ(c.model, "nvmf-ublk test target");
  EXPECT_EQ(c.firmware, "1.2.3");
  EXPECT_EQ(c.ieee_oui, 0x002538u);
  EXPECT_EQ(c.cmic, 0x0B);
  EXPECT_TRUE(c.SupportsAnaReporting());
  EXPECT_EQ(c.mdts, 5);
  EXPECT_EQ(c.cntlid, 0x0102);
  EXPECT_EQ(c.version, 0x00020000u);
  EXPECT_EQ(c.oaes, 0x900u);
  EXPECT_EQ(c.ctratt, 1u);
  EXPECT_EQ(c.cntrltype, 1);
  EXPECT_THAT(c.crdt, ElementsAre(1, 20, 300));
  EXPECT_EQ(c.oacs, 0x0004);
  EXPECT_EQ(c.aerl, 3);
  EXPECT_EQ(c.lpa, 0x0E);
  EXPECT_EQ(c.kas, 10);
  EXPECT_EQ(c.anatt, 10);
  EXPECT_EQ(c.anacap, 0x47);
  EXPECT_EQ(c.anagrpmax, 128u);
  EXPECT_EQ(c.nanagrpid, 64u);
  EXPECT_EQ(c.cqt, 1500);
  EXPECT_EQ(c.sqes, 0x66);
  EXPECT_EQ(c.cqes, 0x44);
  EXPECT_EQ(c.maxcmd, 128);
  EXPECT_EQ(c.nn, 1024u);
  EXPECT_EQ(c.oncs, 0x010C);
  EXPECT_EQ(c.fuses, 1);
  EXPECT_EQ(c.vwc, 0x07);
  EXPECT_EQ(c.sgls, 0x00100001u);
  EXPECT_EQ(c.subnqn, "nqn.2026-01.io.test:subsys1");
  EXPECT_EQ(c.ioccsz, 260u);
  EXPECT_EQ(c.iorcsz, 1u);
  EXPECT_EQ(c.icdoff, 0);
  EXPECT_EQ(c.fcatt, 0);
  EXPECT_EQ(c.msdbd, 1);
  EXPECT_EQ(c.ofcs, 1);
  // Not part of CNS 01h.
  EXPECT_EQ(c.dmrl, 0);
  EXPECT_EQ(c.dmrsl, 0u);
  EXPECT_EQ(c.dmsl, 0u);

  EXPECT_TRUE(c.SupportsDsm());
  EXPECT_TRUE(c.SupportsWriteZeroes());
  EXPECT_TRUE(c.SupportsCopy());
  EXPECT_FALSE(c.SupportsCompare());
  EXPECT_FALSE(c.SupportsWriteUncorrectable());
  EXPECT_FALSE(c.SupportsReservations());
  EXPECT_FALSE(c.SupportsVerify());
  EXPECT_TRUE(c.HasVolatileWriteCache());
  EXPECT_EQ(c.InCapsuleDataBytes(), 4096u);
  EXPECT_FALSE(c.IsDiscoveryController());
  EXPECT_EQ(MaxTransferBytes(c, 4096), 128u * 1024);
}

TEST(IdentifyController, LargerBufferIsFine) {
  Image img = ControllerImage();
  img.bytes.resize(8192, 0xFF);
  ASSERT_OK_AND_ASSIGN(ControllerInfo c, ParseIdentifyController(img.data(), img.size()));
  EXPECT_EQ(c.nn, 1024u);
}

TEST(IdentifyController, TextFieldsTrimmed) {
  Image img;
  img.Fill(4, 20, ' ').Str(4, "   LEFT PADDED");  // SN: leading and trailing spaces
  img.Str(24, "NUL padded model");                // MN: NUL padded
  img.Fill(64, 8, ' ');                           // FR: all spaces
  ASSERT_OK_AND_ASSIGN(ControllerInfo c, ParseIdentifyController(img.data(), img.size()));
  EXPECT_EQ(c.serial, "LEFT PADDED");
  EXPECT_EQ(c.model, "NUL padded model");
  EXPECT_EQ(c.firmware, "");
  EXPECT_EQ(c.subnqn, "");
  // Spaces inside are kept; a full-width field without a terminator is read whole.
  img.Str(24, std::string(20, 'a') + " " + std::string(19, 'b'));
  img.Str(768, "nqn." + std::string(252, 'x'));
  ASSERT_OK_AND_ASSIGN(c, ParseIdentifyController(img.data(), img.size()));
  EXPECT_EQ(c.model, std::string(20, 'a') + " " + std::string(19, 'b'));
  EXPECT_EQ(c.subnqn.size(), 256u);
}

struct BadController {
  const char* name;
  size_t offset;  // byte to set
  uint8_t value;
  const char* message;
};

TEST(IdentifyController, RejectsBadTextFields) {
  const BadController cases[] = {
      {"sn_control", 5, 0x01, "SN contains byte 0x01 at offset 1"},
      {"sn_high", 4, 0xC3, "SN contains byte 0xc3"},
      {"mn_del", 30, 0x7F, "MN contains byte 0x7f at offset 6"},
      {"fr_newline", 64, '\n', "FR contains byte 0x0a"},
      {"subnqn_tab", 770, '\t', "SUBNQN contains byte 0x09 at offset 2"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    Image img = ControllerImage();
    img.U8(tc.offset, tc.value);
    EXPECT_THAT(ParseIdentifyController(img.data(), img.size()),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(tc.message)));
  }
  // UTF-8 is fine in an NQN.
  Image img = ControllerImage();
  img.Fill(768, 256, 0).Str(768, "nqn.2026-01.io.test:\xC3\xA9t\xC3\xA9");
  ASSERT_OK_AND_ASSIGN(ControllerInfo c, ParseIdentifyController(img.data(), img.size()));
  EXPECT_EQ(c.subnqn, "nqn.2026-01.io.test:\xC3\xA9t\xC3\xA9");
  // Bytes after the NUL terminator are not looked at.
  img = ControllerImage();
  img.U8(768 + 100, 0x01);
  EXPECT_THAT(ParseIdentifyController(img.data(), img.size()), IsOk());
}

TEST(IdentifyController, RejectsTruncated) {
  Image img = ControllerImage();
  for (size_t len : {size_t{0}, size_t{1}, size_t{1024}, size_t{4095}}) {
    SCOPED_TRACE(len);
    EXPECT_THAT(ParseIdentifyController(img.data(), len),
                StatusIs(absl::StatusCode::kDataLoss,
                         HasSubstr("Identify Controller data is " + std::to_string(len) +
                                   " bytes, need 4096")));
  }
  EXPECT_THAT(ParseIdentifyController(nullptr, 4096), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(IdentifyNamespace, CheckNamespaceServable) {
  NamespaceInfo ns;
  EXPECT_TRUE(CheckNamespaceServable(ns, 8192).ok());  // inactive: all zeroes
  ns.ncap = 5;
  EXPECT_EQ(CheckNamespaceServable(ns, 0).code(), absl::StatusCode::kDataLoss);
  ns = NamespaceInfo{};
  ns.nsze = ns.ncap = 1024;
  ns.lba_bytes = 65536;
  EXPECT_TRUE(CheckNamespaceServable(ns, 0).ok());  // MDTS 0: no limit
  EXPECT_TRUE(CheckNamespaceServable(ns, 65536).ok());
  const absl::Status s = CheckNamespaceServable(ns, 8192);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("65536-byte logical block is larger than the controller's "
                             "8192-byte maximum transfer (MDTS)"),
            std::string::npos)
      << s;
}

TEST(IdentifyController, MaxTransferBytes) {
  ControllerInfo c;
  EXPECT_EQ(MaxTransferBytes(c, 4096), 0u);  // MDTS 0: no limit
  c.mdts = 1;
  EXPECT_EQ(MaxTransferBytes(c, 4096), 8192u);
  c.mdts = 8;
  EXPECT_EQ(MaxTransferBytes(c, 4096), 1024u * 1024);
  EXPECT_EQ(MaxTransferBytes(c, 65536), 16u * 1024 * 1024);
  EXPECT_EQ(MaxTransferBytes(c, 0), 0u);
  c.mdts = 51;
  EXPECT_EQ(MaxTransferBytes(c, 4096), uint64_t{1} << 63);
  c.mdts = 52;  // 2^64: saturates
  EXPECT_EQ(MaxTransferBytes(c, 4096), std::numeric_limits<uint64_t>::max());
  c.mdts = 255;
  EXPECT_EQ(MaxTransferBytes(c, 4096), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(MaxTransferBytes(c, 1), std::numeric_limits<uint64_t>::max());
}

TEST(IdentifyController, InCapsuleDataBytes) {
  ControllerInfo c;
  for (uint32_t ioccsz : {0u, 1u, 3u}) {
    c.ioccsz = ioccsz;
    EXPECT_EQ(c.InCapsuleDataBytes(), 0u) << ioccsz;
  }
  c.ioccsz = 4;  // the SQE alone
  EXPECT_EQ(c.InCapsuleDataBytes(), 0u);
  c.ioccsz = 5;
  EXPECT_EQ(c.InCapsuleDataBytes(), 16u);
  c.ioccsz = 0x10000004;  // 4 GiB + 64: clamps
  EXPECT_EQ(c.InCapsuleDataBytes(), std::numeric_limits<uint32_t>::max());
  c.ioccsz = 0xFFFFFFFF;
  EXPECT_EQ(c.InCapsuleDataBytes(), std::numeric_limits<uint32_t>::max());
}

TEST(IdentifyController, DiscoveryController) {
  ControllerInfo c;
  c.cntrltype = 2;
  EXPECT_TRUE(c.IsDiscoveryController());
  c.cntrltype = 0;
  EXPECT_FALSE(c.IsDiscoveryController());
  c.subnqn = "nqn.2014-08.org.nvmexpress.discovery";
  EXPECT_TRUE(c.IsDiscoveryController());  // pre-1.4 discovery controller
  c.cntrltype = 1;
  EXPECT_FALSE(c.IsDiscoveryController());  // an I/O controller says so
}

TEST(IdentifyController, OncsAndVwcBits) {
  ControllerInfo c;
  c.oncs = 0x01A3;  // Compare, Write Uncorrectable, Reservations, Verify, Copy
  EXPECT_TRUE(c.SupportsCompare());
  EXPECT_TRUE(c.SupportsWriteUncorrectable());
  EXPECT_FALSE(c.SupportsDsm());
  EXPECT_FALSE(c.SupportsWriteZeroes());
  EXPECT_TRUE(c.SupportsReservations());
  EXPECT_TRUE(c.SupportsVerify());
  EXPECT_TRUE(c.SupportsCopy());
  c.vwc = 0x06;  // flush behaviour bits only
  EXPECT_FALSE(c.HasVolatileWriteCache());
}

TEST(IdentifyControllerNvm, KnownBytes) {
  // NVM Command Set 1.0 Figure 109: VSL 0, WZSL 1, WUSL 2, DMRL 3, DMRSL 4, DMSL 8.
  Image img;
  img.U8(0, 7).U8(1, 9).U8(2, 3).U8(3, 255).U32(4, 0x00100000).U64(8, 0x123456789ull);
  ControllerInfo c;
  ASSERT_THAT(ParseIdentifyControllerNvm(img.data(), img.size(), &c), IsOk());
  EXPECT_EQ(c.vsl, 7);
  EXPECT_EQ(c.wzsl, 9);
  EXPECT_EQ(c.dmrl, 255);
  EXPECT_EQ(c.dmrsl, 0x00100000u);
  EXPECT_EQ(c.dmsl, 0x123456789ull);
  EXPECT_THAT(ParseIdentifyControllerNvm(img.data(), 16, &c),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("16 bytes, need 4096")));
}

// Identify Namespace offsets (NVM Command Set 1.0 Figures 97, 98).
Image NamespaceImage() {
  Image img;
  img.U64(0, 0x200000)      // NSZE
      .U64(8, 0x200000)     // NCAP
      .U64(16, 0x1000)      // NUSE
      .U8(24, 0x11)         // NSFEAT: thin, OPTPERF
      .U8(25, 2)            // NLBAF: 3 formats
      .U8(26, 0x01)         // FLBAS: format 1
      .U8(30, 0x01)         // NMIC: shared
      .U8(33, 0x09)         // DLFEAT
      .U16(46, 256)         // NOIOB
      .U64(48, 1ull << 33)  // NVMCAP low
      .U16(64, 7)           // NPWG
      .U16(66, 7)           // NPWA
      .U16(68, 15)          // NPDG
      .U16(70, 15)          // NPDA
      .U16(72, 31)          // NOWS
      .U32(92, 3)           // ANAGRPID
      .U16(128, 0)
      .U8(130, 9)  // LBAF0: 512 bytes
      .U16(132, 0)
      .U8(134, 12)  // LBAF1: 4096 bytes
      .U16(136, 8)
      .U8(138, 12);                                                              // LBAF2: 4096 + 8
  for (int i = 0; i < 16; ++i) img.U8(104 + i, static_cast<uint8_t>(0xA0 + i));  // NGUID
  for (int i = 0; i < 8; ++i) img.U8(120 + i, static_cast<uint8_t>(0x10 + i));   // EUI64
  return img;
}

TEST(IdentifyNamespace, KnownBytes) {
  Image img = NamespaceImage();
  ASSERT_OK_AND_ASSIGN(NamespaceInfo ns, ParseIdentifyNamespace(img.data(), img.size()));
  EXPECT_EQ(ns.nsze, 0x200000u);
  EXPECT_EQ(ns.ncap, 0x200000u);
  EXPECT_EQ(ns.nuse, 0x1000u);
  EXPECT_EQ(ns.nsfeat, 0x11);
  EXPECT_TRUE(ns.optperf());
  EXPECT_EQ(ns.nlbaf, 2);
  EXPECT_EQ(ns.flbas, 1);
  EXPECT_EQ(ns.format_index, 1);
  EXPECT_EQ(ns.lba_bytes, 4096u);
  EXPECT_EQ(ns.metadata_bytes, 0);
  EXPECT_FALSE(ns.metadata_extended);
  EXPECT_EQ(ns.nmic, 1);
  EXPECT_EQ(ns.dlfeat, 9);
  EXPECT_EQ(ns.noiob, 256);
  EXPECT_EQ(ns.nvmcap, 1ull << 33);
  EXPECT_EQ(ns.npwg, 7);
  EXPECT_EQ(ns.npwa, 7);
  EXPECT_EQ(ns.npdg, 15);
  EXPECT_EQ(ns.npda, 15);
  EXPECT_EQ(ns.nows, 31);
  EXPECT_EQ(ns.anagrpid, 3u);
  EXPECT_EQ(ns.nguid[0], 0xA0);
  EXPECT_EQ(ns.nguid[15], 0xAF);
  EXPECT_EQ(ns.eui64[0], 0x10);
  EXPECT_EQ(ns.eui64[7], 0x17);
  EXPECT_FALSE(ns.inactive());
  EXPECT_EQ(ns.PhysicalBlockBytes(), 8u * 4096);
  EXPECT_EQ(NamespaceIdsFromIdentify(ns).StableId(), "nguid.a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
}

TEST(IdentifyNamespace, PhysicalBlockWithoutOptperf) {
  Image img = NamespaceImage();
  img.U8(24, 0x01);
  ASSERT_OK_AND_ASSIGN(NamespaceInfo ns, ParseIdentifyNamespace(img.data(), img.size()));
  EXPECT_FALSE(ns.optperf());
  EXPECT_EQ(ns.PhysicalBlockBytes(), 4096u);
  ns.npwg = 0xFFFF;
  ns.nsfeat = 0x10;
  ns.lba_bytes = 65536;
  EXPECT_EQ(ns.PhysicalBlockBytes(), uint64_t{65536} * 65536);  // no 32-bit overflow
}

TEST(IdentifyNamespace, MetadataFormat) {
  Image img = NamespaceImage();
  img.U8(26, 0x12);  // format 2, extended LBA
  ASSERT_OK_AND_ASSIGN(NamespaceInfo ns, ParseIdentifyNamespace(img.data(), img.size()));
  EXPECT_EQ(ns.format_index, 2);
  EXPECT_EQ(ns.lba_bytes, 4096u);
  EXPECT_EQ(ns.metadata_bytes, 8);
  EXPECT_TRUE(ns.metadata_extended);
}

TEST(IdentifyNamespace, UpperFlbasBits) {
  // 20 formats (NLBAF 19): FLBAS bits 6:5 are format index bits 5:4.
  Image img = NamespaceImage();
  img.U8(25, 19).U8(26, 0x21);                         // index 0x11 = 17
  img.U16(128 + 17 * 4, 16).U8(128 + 17 * 4 + 2, 13);  // LBAF17: 8 KiB + 16
  ASSERT_OK_AND_ASSIGN(NamespaceInfo ns, ParseIdentifyNamespace(img.data(), img.size()));
  EXPECT_EQ(ns.format_index, 17);
  EXPECT_EQ(ns.lba_bytes, 8192u);
  EXPECT_EQ(ns.metadata_bytes, 16);
  // With 16 or fewer formats the upper bits are ignored.
  img.U8(25, 2);
  ASSERT_OK_AND_ASSIGN(ns, ParseIdentifyNamespace(img.data(), img.size()));
  EXPECT_EQ(ns.format_index, 1);
  EXPECT_EQ(ns.lba_bytes, 4096u);
}

TEST(IdentifyNamespace, InactiveIsAllZero) {
  Image img;
  ASSERT_OK_AND_ASSIGN(NamespaceInfo ns, ParseIdentifyNamespace(img.data(), img.size()));
  EXPECT_TRUE(ns.inactive());
  EXPECT_EQ(ns.lba_bytes, 0u);
  EXPECT_EQ(ns.PhysicalBlockBytes(), 0u);
  EXPECT_EQ(NamespaceIdsFromIdentify(ns).StableId(), "");
  EXPECT_FALSE(NamespaceIdsFromIdentify(ns).nguid.has_value());
  // NSZE 0 with a bad format is still just inactive.
  img.U8(25, 1).U8(26, 5);
  EXPECT_THAT(ParseIdentifyNamespace(img.data(), img.size()), IsOk());
}

struct BadNamespace {
  const char* name;
  std::vector<std::pair<size_t, uint8_t>> set;
  const char* message;
};

TEST(IdentifyNamespace, RejectsMalformed) {
  const BadNamespace cases[] = {
      {"flbas_above_nlbaf", {{26, 0x03}}, "FLBAS selects LBA format 3 but NLBAF is 2"},
      {"flbas_upper_above_nlbaf", {{25, 16}, {26, 0x21}}, "LBA format 17 but NLBAF is 16"},
      {"lbads_8", {{134, 8}}, "LBA format 1 has LBADS 8: below the minimum of 9"},
      {"lbads_0", {{134, 0}}, "has LBADS 0"},
      {"lbads_17", {{134, 17}}, "LBA format 1 has LBADS 17: above the supported maximum of 16"},
      {"nlbaf_64", {{25, 64}}, "NLBAF 64 exceeds the maximum of 63"},
      {"nlbaf_255", {{25, 255}}, "NLBAF 255 exceeds"},
      {"nsze_overflow", {{7, 0x01}}, "overflows 64 bits"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    Image img = NamespaceImage();
    for (auto [off, v] : tc.set) img.U8(off, v);
    EXPECT_THAT(ParseIdentifyNamespace(img.data(), img.size()),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(tc.message)));
  }
  Image img = NamespaceImage();
  EXPECT_THAT(ParseIdentifyNamespace(img.data(), 383),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("383 bytes, need 4096")));
  EXPECT_THAT(ParseIdentifyNamespace(nullptr, 0), StatusIs(absl::StatusCode::kDataLoss));
  // Largest size that fits: NSZE x 4096 = 2^64 - 4096.
  img.U64(0, (~uint64_t{0}) >> 12);
  EXPECT_THAT(ParseIdentifyNamespace(img.data(), img.size()), IsOk());
}

TEST(IdentifyNamespace, NvmcapSaturates) {
  Image img = NamespaceImage();
  img.U64(56, 1);  // upper 64 bits of the 128-bit NVMCAP
  ASSERT_OK_AND_ASSIGN(NamespaceInfo ns, ParseIdentifyNamespace(img.data(), img.size()));
  EXPECT_EQ(ns.nvmcap, std::numeric_limits<uint64_t>::max());
}

// One Namespace Identification Descriptor (Base 2.0 Figure 279): NIDT, NIDL, 2 reserved, NID.
void AddDescriptor(std::vector<uint8_t>* v, uint8_t nidt, uint8_t nidl, std::vector<uint8_t> nid) {
  v->push_back(nidt);
  v->push_back(nidl);
  v->push_back(0);
  v->push_back(0);
  v->insert(v->end(), nid.begin(), nid.end());
}

std::vector<uint8_t> Seq(uint8_t first, size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(first + i);
  return v;
}

TEST(NamespaceIdDescriptors, AllTypes) {
  std::vector<uint8_t> buf;
  AddDescriptor(&buf, 1, 8, Seq(0x10, 8));    // EUI64
  AddDescriptor(&buf, 2, 16, Seq(0xA0, 16));  // NGUID
  AddDescriptor(&buf, 3, 16, Seq(0x00, 16));  // UUID
  AddDescriptor(&buf, 4, 1, {0x00});          // CSI
  buf.resize(kIdentifyDataSize, 0);           // NIDT 0 ends the list
  ASSERT_OK_AND_ASSIGN(NamespaceIds ids, ParseNamespaceIdDescriptors(buf.data(), buf.size()));
  ASSERT_TRUE(ids.eui64.has_value());
  EXPECT_EQ((*ids.eui64)[0], 0x10);
  EXPECT_EQ((*ids.eui64)[7], 0x17);
  ASSERT_TRUE(ids.nguid.has_value());
  EXPECT_EQ((*ids.nguid)[15], 0xAF);
  ASSERT_TRUE(ids.uuid.has_value());
  EXPECT_EQ((*ids.uuid)[15], 0x0F);
  ASSERT_TRUE(ids.csi.has_value());
  EXPECT_EQ(*ids.csi, 0);
  EXPECT_EQ(ids.StableId(), "nguid.a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  ids.nguid.reset();
  EXPECT_EQ(ids.StableId(), "eui.1011121314151617");
  ids.eui64.reset();
  EXPECT_EQ(ids.StableId(), "uuid.00010203-0405-0607-0809-0a0b0c0d0e0f");
  ids.uuid.reset();
  EXPECT_EQ(ids.StableId(), "");
}

TEST(NamespaceIdDescriptors, EdgeCases) {
  // Empty list.
  std::vector<uint8_t> empty(kIdentifyDataSize, 0);
  ASSERT_OK_AND_ASSIGN(NamespaceIds ids, ParseNamespaceIdDescriptors(empty.data(), empty.size()));
  EXPECT_FALSE(ids.eui64 || ids.nguid || ids.uuid || ids.csi);
  ASSERT_OK_AND_ASSIGN(ids, ParseNamespaceIdDescriptors(nullptr, 0));
  // An unknown type is skipped by its NIDL; an all-zero NGUID does not name the namespace.
  std::vector<uint8_t> buf;
  AddDescriptor(&buf, 0x7F, 5, Seq(1, 5));
  AddDescriptor(&buf, 2, 16, std::vector<uint8_t>(16, 0));
  AddDescriptor(&buf, 3, 16, Seq(0xF0, 16));
  // No terminator: the list fills the buffer exactly.
  ASSERT_OK_AND_ASSIGN(ids, ParseNamespaceIdDescriptors(buf.data(), buf.size()));
  EXPECT_TRUE(ids.nguid.has_value());
  EXPECT_EQ(ids.StableId(), "uuid.f0f1f2f3-f4f5-f6f7-f8f9-fafbfcfdfeff");
  // A terminator byte as the last byte is enough.
  buf.push_back(0);
  EXPECT_THAT(ParseNamespaceIdDescriptors(buf.data(), buf.size()), IsOk());
}

struct BadDescriptors {
  const char* name;
  std::vector<uint8_t> bytes;
  const char* message;
};

TEST(NamespaceIdDescriptors, RejectsMalformed) {
  auto desc = [](uint8_t nidt, uint8_t nidl, size_t value_len) {
    std::vector<uint8_t> v;
    AddDescriptor(&v, nidt, nidl, std::vector<uint8_t>(value_len, 0x5A));
    return v;
  };
  auto cat = [](std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const BadDescriptors cases[] = {
      {"eui64_nidl_16", desc(1, 16, 16), "NIDL 16 for NIDT 1 (EUI64), expected 8"},
      {"nguid_nidl_8", desc(2, 8, 8), "NIDL 8 for NIDT 2 (NGUID), expected 16"},
      {"uuid_nidl_15", desc(3, 15, 15), "NIDL 15 for NIDT 3 (UUID), expected 16"},
      {"csi_nidl_0", desc(4, 0, 0), "NIDL 0 for NIDT 4 (CSI), expected 1"},
      {"csi_nidl_4", desc(4, 4, 4), "NIDL 4 for NIDT 4 (CSI), expected 1"},
      {"value_truncated", desc(2, 16, 10), "offset 0: NIDL 16 runs past the end (10 bytes left)"},
      {"header_truncated", {0x01, 0x08, 0x00}, "offset 0: header truncated (3 bytes left)"},
      {"second_header_truncated", cat(desc(1, 8, 8), {0x02}),
       "offset 12: header truncated (1 bytes left)"},
      {"second_value_truncated", cat(desc(1, 8, 8), desc(3, 16, 4)),
       "offset 12: NIDL 16 runs past the end"},
      {"unknown_truncated", desc(9, 200, 100), "NIDL 200 runs past the end"},
      {"duplicate", cat(desc(1, 8, 8), desc(1, 8, 8)), "NIDT 1 (EUI64) appears twice"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    EXPECT_THAT(ParseNamespaceIdDescriptors(tc.bytes.data(), tc.bytes.size()),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(tc.message)));
  }
}

std::vector<uint8_t> NsidList(std::initializer_list<uint32_t> nsids, size_t size = 4096) {
  std::vector<uint8_t> v(size, 0);
  size_t off = 0;
  for (uint32_t n : nsids) {
    StoreLe32(&v.at(off + 3) - 3, n);
    off += 4;
  }
  return v;
}

TEST(ActiveNamespaceList, Parses) {
  auto v = NsidList({1, 2, 5, 0x10000, 0xFFFFFFFE});
  ASSERT_OK_AND_ASSIGN(auto nsids, ParseActiveNamespaceList(v.data(), v.size()));
  EXPECT_THAT(nsids, ElementsAre(1u, 2u, 5u, 0x10000u, 0xFFFFFFFEu));
  // Entries after the terminating 0 are not part of the list.
  v = NsidList({3, 0, 1});
  ASSERT_OK_AND_ASSIGN(nsids, ParseActiveNamespaceList(v.data(), v.size()));
  EXPECT_THAT(nsids, ElementsAre(3u));
  // A full list has no terminator.
  v = NsidList({7, 8}, 8);
  ASSERT_OK_AND_ASSIGN(nsids, ParseActiveNamespaceList(v.data(), v.size()));
  EXPECT_THAT(nsids, ElementsAre(7u, 8u));
  std::vector<uint8_t> full(4096);
  for (uint32_t i = 0; i < 1024; ++i) StoreLe32(&full[4 * i], i + 1);
  ASSERT_OK_AND_ASSIGN(nsids, ParseActiveNamespaceList(full.data(), full.size()));
  EXPECT_EQ(nsids.size(), 1024u);
  ASSERT_OK_AND_ASSIGN(nsids, ParseActiveNamespaceList(nullptr, 0));
  EXPECT_TRUE(nsids.empty());
}

TEST(ActiveNamespaceList, RejectsMalformed) {
  struct Case {
    const char* name;
    std::vector<uint8_t> bytes;
    const char* message;
  };
  const Case cases[] = {
      {"descending", NsidList({5, 3}), "entry 1 (NSID 3) does not follow NSID 5"},
      {"repeated", NsidList({1, 2, 2}), "entry 2 (NSID 2) does not follow NSID 2"},
      {"broadcast", NsidList({1, 0xFFFFFFFF}), "entry 1 is the broadcast NSID"},
      {"odd_length", NsidList({1}, 4095), "4095 bytes, not a multiple of 4"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    EXPECT_THAT(ParseActiveNamespaceList(tc.bytes.data(), tc.bytes.size()),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(tc.message)));
  }
}

TEST(TextField, TrimsAndValidates) {
  EXPECT_EQ(*ParseTextField("  ab c  ", 8, "X"), "ab c");
  EXPECT_EQ(*ParseTextField("abc\0zzz", 7, "X"), "abc");
  EXPECT_EQ(*ParseTextField("", 0, "X"), "");
  EXPECT_EQ(*ParseTextField("\xE2\x82\xAC", 3, "X", /*allow_utf8=*/true), "\xE2\x82\xAC");
  EXPECT_THAT(
      ParseTextField("\xE2\x82\xAC", 3, "Field"),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("Field contains byte 0xe2 at offset 0")));
  EXPECT_THAT(ParseTextField("a\rb", 3, "Field", true),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("byte 0x0d at offset 1")));
}

}  // namespace
}  // namespace nvmf_ublk::nvme
