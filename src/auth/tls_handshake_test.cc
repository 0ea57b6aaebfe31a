// The TLS 1.3 PSK handshake, client against server in memory: both suites, the keys each side
// derives for kernel TLS agree, and unknown identities and wrong keys fail clearly.
#include "auth/tls_handshake.h"

#include <openssl/evp.h>

#include "auth/tls_psk.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::auth {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::testing::HasSubstr;

constexpr char kId[] = "NVMe0R01 nqn.2014-08.org.nvmexpress:uuid:h nqn.2026-01.io.test:s";

// Moves bytes both ways until neither side has more; returns the first error.
absl::Status Pump(TlsHandshake& c, TlsHandshake& s) {
  RETURN_IF_ERROR(c.Start());
  for (int i = 0; i < 20; ++i) {
    Bytes a = c.TakeOutput();
    Bytes b = s.TakeOutput();
    if (a.empty() && b.empty()) break;
    if (!a.empty()) RETURN_IF_ERROR(s.Feed(a));
    if (!b.empty()) RETURN_IF_ERROR(c.Feed(b));
  }
  return absl::OkStatus();
}

TlsPskLookup One(std::string id, Bytes key, HashId hash) {
  return [id, key, hash](std::string_view got) -> std::optional<TlsServerPsk> {
    if (got != id) return std::nullopt;
    return TlsServerPsk{key, hash};
  };
}

TEST(TlsHandshake, BothSuitesAgreeOnTheTrafficKeys) {
  for (HashId hash : {HashId::kSha256, HashId::kSha384}) {
    SCOPED_TRACE(ToString(hash));
    const Bytes psk = RandomBytes(HashLength(hash));
    auto c = TlsHandshake::Client(kId, psk, hash);
    auto s = TlsHandshake::Server(One(kId, psk, hash));
    ASSERT_THAT(c, IsOk());
    ASSERT_THAT(s, IsOk());
    ASSERT_THAT(Pump(**c, **s), IsOk());
    ASSERT_TRUE((*c)->done());
    ASSERT_TRUE((*s)->done());
    EXPECT_EQ((*s)->identity(), kId);
    EXPECT_EQ((*c)->hash(), hash);
    EXPECT_EQ((*c)->tx().key.size(), hash == HashId::kSha384 ? 32u : 16u);
    EXPECT_EQ((*c)->tx().iv.size(), 12u);
    EXPECT_EQ((*c)->tx().key, (*s)->rx().key);
    EXPECT_EQ((*c)->tx().iv, (*s)->rx().iv);
    EXPECT_EQ((*c)->rx().key, (*s)->tx().key);
    EXPECT_NE((*c)->tx().key, (*c)->rx().key);
    EXPECT_EQ((*c)->trailing_bytes(), 0u);  // no session ticket after the handshake
  }
}

// Decrypts one TLS 1.3 record (RFC 8446 §5.2) with AES-GCM `k` at sequence 0, as kernel TLS
// would with the keys handed to it; returns the inner plaintext (content type last).
Bytes OpenRecord(const TlsTrafficKeys& k, const Bytes& rec) {
  EXPECT_GE(rec.size(), 5u + 16u);
  EXPECT_EQ(rec[0], 23);  // application_data
  const size_t body = rec.size() - 5 - 16;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const EVP_CIPHER* cipher = k.key.size() == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm();
  Bytes out(body);
  int n = 0, fin = 0;
  EXPECT_EQ(EVP_DecryptInit_ex(ctx, cipher, nullptr, k.key.data(), k.iv.data()), 1);  // seq 0
  EXPECT_EQ(EVP_DecryptUpdate(ctx, nullptr, &n, rec.data(), 5), 1);                   // AAD
  EXPECT_EQ(EVP_DecryptUpdate(ctx, out.data(), &n, rec.data() + 5, static_cast<int>(body)), 1);
  EXPECT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16,
                                const_cast<uint8_t*>(rec.data() + 5 + body)),
            1);
  const int ok = EVP_DecryptFinal_ex(ctx, out.data() + n, &fin);
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_EQ(ok, 1) << "the record does not authenticate with the exported key";
  return out;
}

TEST(TlsHandshake, ExportedKeysAreTheOnesOpenSslEncryptsWith) {
  for (HashId hash : {HashId::kSha256, HashId::kSha384}) {
    const Bytes psk = RandomBytes(HashLength(hash));
    auto c = TlsHandshake::Client(kId, psk, hash);
    auto s = TlsHandshake::Server(One(kId, psk, hash));
    ASSERT_THAT(Pump(**c, **s), IsOk());
    // Client -> server: OpenSSL's record opens with the server's rx key (= the client's tx).
    auto rec = (*c)->SealRecordWithOpenSsl(View("ICReq"));
    ASSERT_THAT(rec, IsOk());
    Bytes plain = OpenRecord((*s)->rx(), *rec);
    EXPECT_EQ(std::string(plain.begin(), plain.end()), std::string("ICReq") + '\x17');
    auto back = (*s)->SealRecordWithOpenSsl(View("ICResp"));
    ASSERT_THAT(back, IsOk());
    plain = OpenRecord((*c)->rx(), *back);
    EXPECT_EQ(std::string(plain.begin(), plain.end()), std::string("ICResp") + '\x17');
  }
}

TEST(TlsHandshake, UnknownIdentityAndWrongKeyFail) {
  const Bytes psk = RandomBytes(32);
  auto c = TlsHandshake::Client(kId, psk, HashId::kSha256);
  auto s = TlsHandshake::Server(One("NVMe0R01 other", psk, HashId::kSha256));
  absl::Status st = Pump(**c, **s);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE((*c)->done());
  // The client learns it from the server's alert.
  Bytes alert = (*s)->TakeOutput();
  if (!alert.empty()) {
    absl::Status cs = (*c)->Feed(alert);
    EXPECT_FALSE(cs.ok());
    EXPECT_EQ(cs.code(), absl::StatusCode::kUnauthenticated);
  }

  auto c2 = TlsHandshake::Client(kId, psk, HashId::kSha256);
  auto s2 = TlsHandshake::Server(One(kId, RandomBytes(32), HashId::kSha256));
  absl::Status st2 = Pump(**c2, **s2);
  EXPECT_FALSE(st2.ok());
  EXPECT_THAT(st2.message(), HasSubstr("TLS handshake failed"));
  EXPECT_FALSE((*s2)->done());
}

TEST(TlsHandshake, GarbageFromThePeerFailsCleanly) {
  auto c = TlsHandshake::Client(kId, RandomBytes(32), HashId::kSha256);
  ASSERT_THAT((*c)->Start(), IsOk());
  EXPECT_FALSE((*c)->TakeOutput().empty());  // the ClientHello
  Bytes junk(300, 0x41);
  absl::Status st = (*c)->Feed(junk);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("TLS handshake failed"));
  EXPECT_FALSE((*c)->done());
}

}  // namespace
}  // namespace nvmf_ublk::auth
