// TLS PSKs: the interchange format, the retained PSK, both identity versions and the TLS PSK,
// against published vectors: libnvme's test/psk.c (interchange strings and v1 identities) and the
// kernel's drivers/nvme/common/tests/auth_kunit.c (digest and TLS PSK from a PSK); the v0 values
// were computed independently with Python's hmac/hashlib from the formulas of TP 8018.
#include "auth/tls_psk.h"

#include "absl/strings/escaping.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::auth {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::testing::HasSubstr;

Bytes FromHex(std::string_view hex) {
  std::string raw = absl::HexStringToBytes(absl::string_view(hex.data(), hex.size()));
  return Bytes(raw.begin(), raw.end());
}
std::string Hex(ByteView b) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

constexpr char kK32[] = "5512DBB6737D0106F65975B773DFB011FFC344BCF442E2DD6D8BC4870B5D5B03";
constexpr char kHost[] = "nqn.psk-test-host";
constexpr char kSub[] = "nqn.psk-test-subsys";

Bytes K48() {
  Bytes k = FromHex(kK32);
  Bytes tail = FromHex("FFC344BCF442E2DD6D8BC4870B5D5B03");
  k.insert(k.end(), tail.begin(), tail.end());
  return k;
}

TEST(TlsPsk, InterchangeFormatMatchesLibnvme) {
  EXPECT_EQ(FormatTlsPsk(TlsPsk(HashId::kNone, FromHex(kK32))),
            "NVMeTLSkey-1:00:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:");
  EXPECT_EQ(FormatTlsPsk(TlsPsk(HashId::kSha256, FromHex(kK32))),
            "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:");
  EXPECT_EQ(
      FormatTlsPsk(TlsPsk(HashId::kSha384, K48())),
      "NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/w0S89ELi3W2LxIcLXVsDn8kXZQ==:");
  auto p = ParseTlsPsk(
      "NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/w0S89ELi3W2LxIcLXVsDn8kXZQ==:");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->transform, HashId::kSha384);
  EXPECT_EQ(p->key, K48());
}

TEST(TlsPsk, ParseRejectsWhatIsWrong) {
  EXPECT_THAT(ParseTlsPsk("DHHC-1:01:abc:").status().message(), HasSubstr("NVMeTLSkey-1:"));
  EXPECT_THAT(ParseTlsPsk("NVMeTLSkey-1:03:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:")
                  .status()
                  .message(),
              HasSubstr("00, 01 or 02"));
  // 01 needs 32 bytes; this one has 48.
  EXPECT_THAT(ParseTlsPsk("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/"
                          "w0S89ELi3W2LxIcLXVsDn8kXZQ==:")
                  .status()
                  .message(),
              HasSubstr("32-byte key"));
  EXPECT_THAT(ParseTlsPsk("NVMeTLSkey-1:01:WRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:")
                  .status()
                  .message(),
              HasSubstr("CRC does not match"));
}

TEST(TlsPsk, VersionOneIdentitiesMatchLibnvme) {
  auto a = DeriveTlsIdentity(TlsPsk(HashId::kSha256, FromHex(kK32)), kHost, kSub, 1);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->identity,
            "NVMe1R01 nqn.psk-test-host nqn.psk-test-subsys "
            "iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU=");
  auto b = DeriveTlsIdentity(TlsPsk(HashId::kSha384, K48()), kHost, kSub, 1);
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(b->identity,
            "NVMe1R02 nqn.psk-test-host nqn.psk-test-subsys "
            "QhW2+Rp6RzHlNtCslyRxMnwJ11tKKhz8JCAQpQ+XUD8f9td1VeH5h53yz2wKJG1a");
  EXPECT_EQ(b->hash, HashId::kSha384);
  EXPECT_EQ(Hex(a->tls_psk), "8fc3c0badfd4c0c66fa3ca33aadd0314f85536cc9bc47338b60f3e6e563786ca");
}

TEST(TlsPsk, VersionZeroAndRetained) {
  const TlsPsk k32(HashId::kSha256, FromHex(kK32));
  EXPECT_EQ(Hex(RetainedPsk(k32, kHost)),
            "073311dec37e219ff3acd43f130130c5bdd443c066e1cc3424e49030234ff7d5");
  auto v0 = DeriveTlsIdentity(k32, kHost, kSub, 0);
  ASSERT_THAT(v0, IsOk());
  EXPECT_EQ(v0->identity, "NVMe0R01 nqn.psk-test-host nqn.psk-test-subsys");
  EXPECT_EQ(Hex(v0->tls_psk), "05c6503551ad136e6ee32e6eeb3f6d500b69701d84ec71e328f65c7f51566f68");
  auto v0_48 = DeriveTlsIdentity(TlsPsk(HashId::kSha384, K48()), kHost, kSub, 0);
  ASSERT_THAT(v0_48, IsOk());
  EXPECT_EQ(v0_48->identity, "NVMe0R02 nqn.psk-test-host nqn.psk-test-subsys");
  EXPECT_EQ(Hex(v0_48->tls_psk),
            "f42ba63824cdfe421914c582921f85b5b5b7e2d4df084caeedc9be20b212e8bb0fe8a23e9d59a1c8fc6449"
            "da4970a78d");
  // hh 00: the configured key is the retained one; SHA-256 for 32 bytes.
  auto plain = DeriveTlsIdentity(TlsPsk(HashId::kNone, FromHex(kK32)), kHost, kSub, 0);
  ASSERT_THAT(plain, IsOk());
  EXPECT_EQ(Hex(plain->tls_psk),
            "ec85300ba827726bd3bc4fc07f3a34aec5fe7c8ccac05fefc2f021c74e0df9ef");
  EXPECT_FALSE(DeriveTlsIdentity(k32, kHost, kSub, 2).ok());
}

// The kernel's generated-PSK vectors: digest and TLS PSK from a PSK (the same functions the
// retained path uses after the retained PSK).
TEST(TlsPsk, KernelKunitVectors) {
  struct Case {
    HashId hash;
    const char* psk;
    const char* digest;
    const char* tls_psk;
  } cases[] = {
      {HashId::kSha256, "1733c59fa7f48fcf37f5f26fc4ff0268ad4f78e030f4f3b0bfd1d47e7bb1447a",
       "OldoKuTfKddMuyCznAZojkWD7P4D9/AtzDzLimtOxqI=",
       "3c17da628474a04d2247c4cab47968c915388193f7c071bd9489cc3666cd7cc8"},
      {HashId::kSha384,
       "f14b2dd3234c459694d3bc63f8968bd6b37c2c6de849e22e118749001ce4bbe8640b9e3a748cb11ce4b1d71d35"
       "9cce39",
       "cffMWk8TSS7HOQebjgYEIkrPrjWPV4JE5cdPB8WhEvY4JBW5YynKyv66XscN4A9n",
       "2774753233537b3fa50eb7d16a8e43457d85f4906c005b2236616c5d80939d0898fff15bb8b77119d2be0aac42"
       "3e7590"},
  };
  for (const Case& c : cases) {
    // The kunit test's PSK itself: HMAC(skey = 'A'.., C1 = 0.. || C2 = ff..).
    const size_t n = HashLength(c.hash);
    Bytes skey(n), c1(n), c2(n);
    for (size_t i = 0; i < n; ++i) {
      skey[i] = static_cast<uint8_t>('A' + i);
      c1[i] = static_cast<uint8_t>(i);
      c2[i] = static_cast<uint8_t>(0xFF - i);
    }
    EXPECT_EQ(Hex(Hmac(c.hash, skey, {c1, c2})), c.psk);
    const Bytes psk = FromHex(c.psk);
    const std::string digest = PskDigest(c.hash, psk, "hostnqn", "subsysnqn");
    EXPECT_EQ(digest, c.digest);
    const std::string context = absl::StrCat("0", static_cast<int>(c.hash), " ", digest);
    EXPECT_EQ(Hex(HkdfExpandLabel(c.hash, psk, "nvme-tls-psk", View(context), n)), c.tls_psk);
  }
}

TEST(TlsPsk, GenerateRoundTrips) {
  auto g = GenerateTlsPsk(HashId::kSha384);
  ASSERT_THAT(g, IsOk());
  EXPECT_EQ(g->key.size(), 48u);
  auto back = ParseTlsPsk(FormatTlsPsk(*g));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->key, g->key);
  EXPECT_FALSE(GenerateTlsPsk(HashId::kSha512).ok());
}

}  // namespace
}  // namespace nvmf_ublk::auth
