#include "auth/crypto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/dh.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace nvmf_ublk::auth {
namespace {

const char* DigestName(HashId id) {
  switch (id) {
    case HashId::kSha256:
      return "SHA256";
    case HashId::kSha384:
      return "SHA384";
    case HashId::kSha512:
      return "SHA512";
    case HashId::kNone:
      break;
  }
  return nullptr;
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// Hash and HMAC over valid algorithm names cannot fail on any input; a failure is a broken
// OpenSSL installation (or memory exhaustion), not something a peer can cause.
[[noreturn]] void CryptoBroken(const char* what) {
  NLOG(FATAL) << what << " failed: " << OpenSslError();
  std::abort();
}

struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

}  // namespace

void Wipe(Bytes& b) {
  if (!b.empty()) OPENSSL_cleanse(b.data(), b.size());
  b.clear();
}

size_t HashLength(HashId id) {
  switch (id) {
    case HashId::kSha256:
      return 32;
    case HashId::kSha384:
      return 48;
    case HashId::kSha512:
      return 64;
    case HashId::kNone:
      break;
  }
  return 0;
}

const char* ToString(HashId id) {
  switch (id) {
    case HashId::kNone:
      return "none";
    case HashId::kSha256:
      return "sha256";
    case HashId::kSha384:
      return "sha384";
    case HashId::kSha512:
      return "sha512";
  }
  return "unknown";
}

size_t DhValueLength(DhGroup g) {
  switch (g) {
    case DhGroup::kNull:
      return 0;
    case DhGroup::kFfdhe2048:
      return 256;
    case DhGroup::kFfdhe3072:
      return 384;
    case DhGroup::kFfdhe4096:
      return 512;
    case DhGroup::kFfdhe6144:
      return 768;
    case DhGroup::kFfdhe8192:
      return 1024;
  }
  return 0;
}

const char* ToString(DhGroup g) {
  switch (g) {
    case DhGroup::kNull:
      return "null";
    case DhGroup::kFfdhe2048:
      return "ffdhe2048";
    case DhGroup::kFfdhe3072:
      return "ffdhe3072";
    case DhGroup::kFfdhe4096:
      return "ffdhe4096";
    case DhGroup::kFfdhe6144:
      return "ffdhe6144";
    case DhGroup::kFfdhe8192:
      return "ffdhe8192";
  }
  return "unknown";
}

bool KnownDhGroup(uint8_t id) { return id <= static_cast<uint8_t>(DhGroup::kFfdhe8192); }

Bytes RandomBytes(size_t n) {
  Bytes out(n);
  if (n > 0 && RAND_bytes(out.data(), static_cast<int>(n)) != 1) CryptoBroken("RAND_bytes");
  return out;
}

Bytes Hmac(HashId hash, ByteView key, std::initializer_list<ByteView> parts) {
  const char* digest = DigestName(hash);
  if (digest == nullptr) CryptoBroken("HMAC with no hash");
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) CryptoBroken("EVP_MAC_fetch(HMAC)");
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);
  if (ctx == nullptr) CryptoBroken("EVP_MAC_CTX_new");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_end()};
  // An empty key is legal HMAC; OpenSSL wants a non-null pointer for it.
  static const uint8_t kEmpty = 0;
  if (EVP_MAC_init(ctx, key.empty() ? &kEmpty : key.data(), key.size(), params) != 1) {
    CryptoBroken("EVP_MAC_init");
  }
  for (ByteView p : parts) {
    if (!p.empty() && EVP_MAC_update(ctx, p.data(), p.size()) != 1) CryptoBroken("EVP_MAC_update");
  }
  Bytes out(HashLength(hash));
  size_t n = 0;
  if (EVP_MAC_final(ctx, out.data(), &n, out.size()) != 1 || n != out.size()) {
    CryptoBroken("EVP_MAC_final");
  }
  EVP_MAC_CTX_free(ctx);
  return out;
}

Bytes Hash(HashId hash, ByteView data) {
  const char* digest = DigestName(hash);
  if (digest == nullptr) CryptoBroken("hash with no hash function");
  EVP_MD* md = EVP_MD_fetch(nullptr, digest, nullptr);
  if (md == nullptr) CryptoBroken("EVP_MD_fetch");
  Bytes out(HashLength(hash));
  unsigned int n = 0;
  const int ok = EVP_Digest(data.data(), data.size(), out.data(), &n, md, nullptr);
  EVP_MD_free(md);
  if (ok != 1 || n != out.size()) CryptoBroken("EVP_Digest");
  return out;
}

bool SecureEqual(ByteView a, ByteView b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

struct DhKeyPair::Key {
  Pkey pkey;
};

DhKeyPair::DhKeyPair(DhGroup group, std::unique_ptr<Key> key, Bytes pub)
    : group_(group), key_(std::move(key)), public_(std::move(pub)) {}
DhKeyPair::DhKeyPair(DhKeyPair&&) noexcept = default;
DhKeyPair& DhKeyPair::operator=(DhKeyPair&&) noexcept = default;
DhKeyPair::~DhKeyPair() = default;

absl::StatusOr<DhKeyPair> DhKeyPair::Generate(DhGroup group) {
  const size_t len = DhValueLength(group);
  if (len == 0) return absl::InvalidArgumentError("no DH key pair for the null group");
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1) {
    return absl::InternalError(absl::StrCat("DH key generation: ", OpenSslError()));
  }
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                          const_cast<char*>(ToString(group)), 0),
                         OSSL_PARAM_construct_end()};
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_CTX_set_params(ctx.get(), params) != 1 || EVP_PKEY_generate(ctx.get(), &raw) != 1) {
    return absl::InternalError(
        absl::StrCat("DH key generation (", ToString(group), "): ", OpenSslError()));
  }
  auto key = std::make_unique<Key>();
  key->pkey.reset(raw);
  BIGNUM* pub = nullptr;
  if (EVP_PKEY_get_bn_param(raw, OSSL_PKEY_PARAM_PUB_KEY, &pub) != 1) {
    return absl::InternalError(absl::StrCat("DH public value: ", OpenSslError()));
  }
  Bytes value(len);
  const int n = BN_bn2binpad(pub, value.data(), static_cast<int>(len));
  BN_free(pub);
  if (n != static_cast<int>(len)) return absl::InternalError("DH public value does not fit");
  return DhKeyPair(group, std::move(key), std::move(value));
}

absl::StatusOr<Bytes> DhKeyPair::SharedSecret(ByteView peer) const {
  const size_t len = DhValueLength(group_);
  if (peer.size() != len) {
    return absl::InvalidArgumentError(absl::StrCat("DH value of ", peer.size(), " bytes for ",
                                                   ToString(group_), " (", len, " expected)"));
  }
  BIGNUM* bn = BN_bin2bn(peer.data(), static_cast<int>(peer.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  if (bn != nullptr && bld != nullptr &&
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, ToString(group_), 0) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, bn) == 1) {
    params = OSSL_PARAM_BLD_to_param(bld);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  if (params == nullptr) return absl::InternalError(absl::StrCat("DH peer: ", OpenSslError()));
  PkeyCtx fctx(EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr));
  EVP_PKEY* raw_peer = nullptr;
  const bool built = fctx && EVP_PKEY_fromdata_init(fctx.get()) == 1 &&
                     EVP_PKEY_fromdata(fctx.get(), &raw_peer, EVP_PKEY_PUBLIC_KEY, params) == 1;
  OSSL_PARAM_free(params);
  Pkey peer_key(raw_peer);
  if (!built) return absl::InternalError(absl::StrCat("DH peer: ", OpenSslError()));
  PkeyCtx dctx(EVP_PKEY_CTX_new(key_->pkey.get(), nullptr));
  if (!dctx || EVP_PKEY_derive_init(dctx.get()) != 1 ||
      EVP_PKEY_CTX_set_dh_pad(dctx.get(), 1) != 1) {
    return absl::InternalError(absl::StrCat("DH derive: ", OpenSslError()));
  }
  // validate_peer = 1: OpenSSL's public key check (1 < y < p - 1, and y in the subgroup).
  if (EVP_PKEY_derive_set_peer_ex(dctx.get(), peer_key.get(), 1) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("the peer's DH value is not a valid ", ToString(group_), " public value"));
  }
  Bytes out(len);
  size_t n = out.size();
  if (EVP_PKEY_derive(dctx.get(), out.data(), &n) != 1 || n != len) {
    Wipe(out);
    return absl::InternalError(absl::StrCat("DH derive: ", OpenSslError()));
  }
  return out;
}

}  // namespace nvmf_ublk::auth
