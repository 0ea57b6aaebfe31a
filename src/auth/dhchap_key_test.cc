// DH-HMAC-CHAP secrets: the representation and the key transform, checked against values nvme-cli
// 2.3 computed (`nvme gen-dhchap-key --secret=... --hmac=N --nqn=...`), and against nvme-cli
// itself on random input when it is installed.
#include "auth/dhchap_key.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::auth {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kNqn[] = "nqn.2014-08.org.nvmexpress:uuid:test";

Bytes Seq(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i);
  return b;
}

TEST(DhchapKey, Crc32IsZlibs) {
  EXPECT_EQ(Crc32(View("123456789")), 0xCBF43926u);  // the CRC-32 check value
  EXPECT_EQ(Crc32(ByteView()), 0u);
}

TEST(DhchapKey, FormatMatchesNvmeCli) {
  EXPECT_EQ(FormatDhchapKey(DhchapKey(HashId::kNone, Seq(32))),
            "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:");
  EXPECT_EQ(FormatDhchapKey(DhchapKey(HashId::kNone, Seq(64))),
            "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4"
            "OTo7PD0+P4zODhA=:");
}

TEST(DhchapKey, GenerateWithTransformMatchesNvmeCli) {
  struct Case {
    HashId hash;
    size_t len;
    const char* want;
  } cases[] = {
      {HashId::kSha256, 32, "DHHC-1:01:WulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:"},
      {HashId::kSha384, 48,
       "DHHC-1:02:JzC2BNNCN092uBY9oK1bbG/xrkLudbjqzPRjAtH00YqVJN1+2TpCZUPYxrwS09Qxpo/5Jw==:"},
      {HashId::kSha512, 64,
       "DHHC-1:03:d9FmVEvkZD5WUqUkzVMj3JFzwudZt1EtUNK4zK6+E9Dd42mroGA4ub4Yju0aNPtAr2w0xZFyCxz8d1Q1"
       "2rImDko3x34=:"},
  };
  for (const Case& c : cases) {
    auto key = GenerateDhchapKey(c.hash, c.len, Seq(c.len), kNqn);
    ASSERT_THAT(key, IsOk());
    EXPECT_EQ(FormatDhchapKey(*key), c.want) << ToString(c.hash);
    // The same value is TransformKey of the plain secret with that hash.
    EXPECT_EQ(key->secret, TransformKey(DhchapKey(c.hash, Seq(c.len)), kNqn));
  }
}

TEST(DhchapKey, ParseRoundTripsAndChecksEverything) {
  auto k = ParseDhchapKey("DHHC-1:01:WulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:");
  ASSERT_THAT(k, IsOk());
  EXPECT_EQ(k->transform, HashId::kSha256);
  EXPECT_EQ(k->secret.size(), 32u);
  // The trailing ':' is optional, as for the kernel.
  EXPECT_THAT(ParseDhchapKey("DHHC-1:01:WulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy"), IsOk());

  EXPECT_THAT(ParseDhchapKey("NVMeTLSkey-1:01:abc:").status().message(),
              HasSubstr("must start with 'DHHC-1:'"));
  EXPECT_THAT(ParseDhchapKey("DHHC-1:04:WulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:")
                  .status()
                  .message(),
              HasSubstr("00, 01, 02 or 03"));
  EXPECT_THAT(ParseDhchapKey("DHHC-1:01:Wul!eCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:")
                  .status()
                  .message(),
              HasSubstr("not valid base64"));
  // One character changed: base64 still valid, CRC wrong.
  auto bad = ParseDhchapKey("DHHC-1:01:XulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:");
  EXPECT_THAT(bad.status().message(), HasSubstr("CRC does not match"));
  EXPECT_THAT(bad.status().message(), Not(HasSubstr("XulleCBk")));  // never echoes the secret
  // 16 bytes + CRC: a wrong length.
  std::string short_key = absl::Base64Escape(std::string(20, 'a'));
  EXPECT_THAT(ParseDhchapKey(absl::StrCat("DHHC-1:00:", short_key, ":")).status().message(),
              HasSubstr("20 bytes after base64 decoding"));
}

TEST(DhchapKey, GenerateRejectsBadLengths) {
  EXPECT_THAT(GenerateDhchapKey(HashId::kNone, 40, {}, "").status().message(),
              HasSubstr("not 32, 48 or 64"));
  EXPECT_THAT(GenerateDhchapKey(HashId::kSha384, 32, {}, kNqn).status().message(),
              HasSubstr("48 bytes long, not 32"));
  auto a = GenerateDhchapKey(HashId::kNone, 48, {}, "");
  auto b = GenerateDhchapKey(HashId::kNone, 48, {}, "");
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->secret.size(), 48u);
  EXPECT_NE(a->secret, b->secret);  // random
}

std::string RunCommand(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[512];
  while (fgets(buf, sizeof(buf), f)) out += buf;
  pclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

TEST(DhchapKey, AgreesWithInstalledNvmeCliOnRandomSecrets) {
  if (access("/usr/sbin/nvme", X_OK) != 0) GTEST_SKIP() << "nvme-cli is not installed";
  for (int hmac = 0; hmac <= 3; ++hmac) {
    const size_t len = hmac == 0 ? 48 : HashLength(static_cast<HashId>(hmac));
    Bytes secret = RandomBytes(len);
    std::string hex = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()));
    std::string theirs =
        RunCommand(absl::StrCat("/usr/sbin/nvme gen-dhchap-key --secret=", hex,
                                " --key-length=", len, " --hmac=", hmac, " --nqn=", kNqn, " 2>&1"));
    auto ours = GenerateDhchapKey(static_cast<HashId>(hmac), len, secret, kNqn);
    ASSERT_THAT(ours, IsOk());
    EXPECT_EQ(FormatDhchapKey(*ours), theirs) << "hmac " << hmac;
    EXPECT_THAT(ParseDhchapKey(theirs), IsOk());
  }
}

TEST(DhchapKey, SecretFileMustBePrivate) {
  const std::string path = ::testing::TempDir() + "/dhchap_secret";
  {
    std::ofstream f(path);
    f << "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:\n";
  }
  chmod(path.c_str(), 0644);
  auto r = ReadSecretFile(path);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(), HasSubstr("mode 0644"));
  chmod(path.c_str(), 0600);
  r = ReadSecretFile(path);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:");
  EXPECT_THAT(ParseDhchapKey(*r), IsOk());
  unlink(path.c_str());
  EXPECT_EQ(ReadSecretFile(path).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace nvmf_ublk::auth
