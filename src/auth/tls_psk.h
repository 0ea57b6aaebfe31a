// NVMe/TCP TLS pre-shared keys (NVMe/TCP 1.0 §3.6.1.3, TP 8018; as the kernel, libnvme and SPDK
// derive them):
//
//   configured PSK  "NVMeTLSkey-1:<hh>:<base64(key || CRC-32(key) little-endian)>:"
//                   hh 00: used as is; 01: SHA-256 (32 bytes); 02: SHA-384 (48 bytes)
//   retained PSK    hh 00: the configured PSK; else HKDF-Expand-Label(HKDF-Extract(0, PSK),
//                   "HostNQN", NQNh, L) with hh's hash
//   PSK identity    v0 "NVMe0R0<c> <NQNh> <NQNc>"; v1 "NVMe1R0<c> <NQNh> <NQNc> <digest>",
//                   digest = base64(HMAC(retained, NQNh || " " || NQNc || " NVMe-over-Fabrics"));
//                   c = 1 (SHA-256) or 2 (SHA-384), from hh or else the key length
//   TLS PSK         HKDF-Expand-Label(HKDF-Extract(0, retained), "nvme-tls-psk", context, L),
//                   context = the v0 identity, or "0<c> <digest>" for v1
//
// HKDF-Expand-Label is TLS 1.3's (RFC 8446 §7.1: the label gets the "tls13 " prefix, with
// length bytes). Some libnvme releases (<= 1.15) derived without those length bytes; their keys
// differ, and the kernel and SPDK use the form here.
#ifndef NVMF_UBLK_AUTH_TLS_PSK_H_
#define NVMF_UBLK_AUTH_TLS_PSK_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "auth/crypto.h"

namespace nvmf_ublk::auth {

struct TlsPsk {
  HashId transform = HashId::kNone;  // hh: kNone (00), kSha256 (01), kSha384 (02)
  Bytes key;                         // 32 or 48 bytes

  TlsPsk() = default;
  TlsPsk(HashId t, Bytes k) : transform(t), key(std::move(k)) {}
  TlsPsk(const TlsPsk&) = default;
  TlsPsk& operator=(const TlsPsk&) = default;
  TlsPsk(TlsPsk&&) = default;
  TlsPsk& operator=(TlsPsk&&) = default;
  ~TlsPsk() { Wipe(key); }
  // The hash of the TLS cipher suite and of the derivations after the retained PSK: hh's, or
  // with hh 00 SHA-256 for a 32-byte key and SHA-384 for a 48-byte one.
  HashId cipher_hash() const;
};

absl::StatusOr<TlsPsk> ParseTlsPsk(std::string_view text);
std::string FormatTlsPsk(const TlsPsk& psk);
// A random configured PSK (like `nvme gen-tls-key`): 32 bytes for kSha256/kNone, 48 for kSha384.
absl::StatusOr<TlsPsk> GenerateTlsPsk(HashId transform, Bytes secret = {});

// HKDF-Expand-Label(HKDF-Extract(salt = 0, ikm), label, context, length) with `hash`.
Bytes HkdfExpandLabel(HashId hash, ByteView ikm, std::string_view label, ByteView context,
                      size_t length);

// HKDF-Expand-Label(prk, label, context, length) alone (TLS 1.3's traffic key and IV from a
// traffic secret).
Bytes HkdfExpandLabelOnly(HashId hash, ByteView prk, std::string_view label, ByteView context,
                          size_t length);

Bytes RetainedPsk(const TlsPsk& psk, std::string_view hostnqn);
// base64(HMAC(retained, hostnqn " " subnqn " NVMe-over-Fabrics")).
std::string PskDigest(HashId hash, ByteView retained, std::string_view hostnqn,
                      std::string_view subnqn);

struct TlsIdentity {
  std::string identity;  // what the handshake offers (and the key description in .nvme)
  Bytes tls_psk;         // the key TLS uses
  HashId hash = HashId::kSha256;
  ~TlsIdentity() { Wipe(tls_psk); }
};
// version 0 or 1.
absl::StatusOr<TlsIdentity> DeriveTlsIdentity(const TlsPsk& psk, std::string_view hostnqn,
                                              std::string_view subnqn, int version);

}  // namespace nvmf_ublk::auth

#endif  // NVMF_UBLK_AUTH_TLS_PSK_H_
