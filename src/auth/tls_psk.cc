#include "auth/tls_psk.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "auth/dhchap_key.h"
#include "base/endian.h"
#include "base/log.h"
#include "base/status.h"

namespace nvmf_ublk::auth {
namespace {

const char* DigestName(HashId h) { return h == HashId::kSha384 ? "SHA384" : "SHA256"; }

// HKDF (RFC 5869) from OpenSSL's KDF provider; `mode` one of EVP_KDF_HKDF_MODE_*.
Bytes Hkdf(HashId hash, int mode, ByteView key, ByteView info, size_t length) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  EVP_KDF_free(kdf);
  if (ctx == nullptr) NLOG(FATAL) << "OpenSSL has no HKDF";
  static const uint8_t kEmpty = 0;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(DigestName(hash)),
                                       0),
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.empty() ? &kEmpty : key.data()), key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                        const_cast<uint8_t*>(info.empty() ? &kEmpty : info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  Bytes out(length);
  if (EVP_KDF_derive(ctx, out.data(), out.size(), params) != 1) {
    NLOG(FATAL) << "HKDF failed: " << ERR_error_string(ERR_get_error(), nullptr);
  }
  EVP_KDF_CTX_free(ctx);
  return out;
}

}  // namespace

HashId TlsPsk::cipher_hash() const {
  if (transform != HashId::kNone) return transform;
  return key.size() == 48 ? HashId::kSha384 : HashId::kSha256;
}

absl::StatusOr<TlsPsk> ParseTlsPsk(std::string_view text) {
  ASSIGN_OR_RETURN(KeyText k,
                   ParseKeyText(text, "NVMeTLSkey-1:", 2, "TLS PSK", [](int hh, size_t n) {
                     if (hh == 1) return std::string(n == 32 ? "" : "a 32-byte key");
                     if (hh == 2) return std::string(n == 48 ? "" : "a 48-byte key");
                     return std::string(n == 32 || n == 48 ? "" : "a 32 or 48-byte key");
                   }));
  return TlsPsk(static_cast<HashId>(k.hh), std::move(k.key));
}

std::string FormatTlsPsk(const TlsPsk& psk) {
  return FormatKeyText("NVMeTLSkey-1:", static_cast<int>(psk.transform), psk.key);
}

absl::StatusOr<TlsPsk> GenerateTlsPsk(HashId transform, Bytes secret) {
  if (transform == HashId::kSha512) {
    return absl::InvalidArgumentError("TLS PSKs use SHA-256 or SHA-384 (hmac 1 or 2)");
  }
  const size_t len = transform == HashId::kSha384 ? 48 : 32;
  if (secret.empty()) secret = RandomBytes(len);
  if (secret.size() != len && !(transform == HashId::kNone && secret.size() == 48)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the secret is ", secret.size(), " bytes, not ", len));
  }
  return TlsPsk(transform, std::move(secret));
}

Bytes HkdfExpandLabel(HashId hash, ByteView ikm, std::string_view label, ByteView context,
                      size_t length) {
  Bytes prk = Hkdf(hash, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm, {}, HashLength(hash));
  Bytes out = HkdfExpandLabelOnly(hash, prk, label, context, length);
  Wipe(prk);
  return out;
}

Bytes HkdfExpandLabelOnly(HashId hash, ByteView prk, std::string_view label, ByteView context,
                          size_t length) {
  // HkdfLabel (RFC 8446 §7.1): uint16 length, opaque label<7..255> = "tls13 " + label, opaque
  // context<0..255>.
  const std::string full = absl::StrCat("tls13 ", std::string(label));
  Bytes info;
  info.push_back(static_cast<uint8_t>(length >> 8));
  info.push_back(static_cast<uint8_t>(length));
  info.push_back(static_cast<uint8_t>(full.size()));
  info.insert(info.end(), full.begin(), full.end());
  info.push_back(static_cast<uint8_t>(context.size()));
  info.insert(info.end(), context.begin(), context.end());
  return Hkdf(hash, EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, info, length);
}

Bytes RetainedPsk(const TlsPsk& psk, std::string_view hostnqn) {
  if (psk.transform == HashId::kNone) return psk.key;
  return HkdfExpandLabel(psk.transform, psk.key, "HostNQN", View(hostnqn), psk.key.size());
}

std::string PskDigest(HashId hash, ByteView retained, std::string_view hostnqn,
                      std::string_view subnqn) {
  Bytes mac =
      Hmac(hash, retained, {View(hostnqn), View(" "), View(subnqn), View(" NVMe-over-Fabrics")});
  std::string out =
      absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  Wipe(mac);
  return out;
}

absl::StatusOr<TlsIdentity> DeriveTlsIdentity(const TlsPsk& psk, std::string_view hostnqn,
                                              std::string_view subnqn, int version) {
  if (version != 0 && version != 1) {
    return absl::InvalidArgumentError(absl::StrCat("PSK identity version ", version, " (0 or 1)"));
  }
  if (hostnqn.empty() || subnqn.empty()) {
    return absl::InvalidArgumentError("a PSK identity needs the host and subsystem NQNs");
  }
  TlsIdentity id;
  id.hash = psk.cipher_hash();
  const int c = static_cast<int>(id.hash);
  Bytes retained = RetainedPsk(psk, hostnqn);
  std::string context;
  if (version == 0) {
    id.identity = absl::StrFormat("NVMe0R%02d %s %s", c, hostnqn, subnqn);
    context = id.identity;
  } else {
    const std::string digest = PskDigest(id.hash, retained, hostnqn, subnqn);
    id.identity = absl::StrFormat("NVMe1R%02d %s %s %s", c, hostnqn, subnqn, digest);
    context = absl::StrFormat("%02d %s", c, digest);
  }
  if (context.size() > 255) {
    Wipe(retained);
    return absl::InvalidArgumentError("the NQNs are too long for a PSK identity");
  }
  id.tls_psk = HkdfExpandLabel(id.hash, retained, "nvme-tls-psk", View(context), psk.key.size());
  Wipe(retained);
  return id;
}

}  // namespace nvmf_ublk::auth
