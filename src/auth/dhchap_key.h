// DH-HMAC-CHAP secrets in the representation nvme-cli, libnvme and the kernel use (NVMe Base 2.0
// §8.13.5.8 "Secret representation"):
//
//   DHHC-1:<hh>:<base64(secret || CRC-32(secret), the CRC little-endian)>:
//
// <hh> names the hash that transforms the secret before use (00 none, 01 SHA-256, 02 SHA-384,
// 03 SHA-512); the secret is 32, 48 or 64 bytes. The transformed key for an NQN is
// HMAC(secret, NQN || "NVMe-over-Fabrics") with that hash: the host key with the host NQN, the
// controller key with the subsystem NQN.
#ifndef NVMF_UBLK_AUTH_DHCHAP_KEY_H_
#define NVMF_UBLK_AUTH_DHCHAP_KEY_H_

#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "auth/crypto.h"

namespace nvmf_ublk::auth {

struct DhchapKey {
  HashId transform = HashId::kNone;
  Bytes secret;

  DhchapKey() = default;
  DhchapKey(HashId t, Bytes s) : transform(t), secret(std::move(s)) {}
  DhchapKey(const DhchapKey&) = default;
  DhchapKey& operator=(const DhchapKey&) = default;
  DhchapKey(DhchapKey&&) = default;
  DhchapKey& operator=(DhchapKey&&) = default;
  ~DhchapKey() { Wipe(secret); }
};

// The CRC-32 (IEEE 802.3, as zlib's crc32) the representation appends.
uint32_t Crc32(ByteView data);

// The text both key representations share (DH-HMAC-CHAP secrets here, TLS PSKs in tls_psk.h):
// "<prefix><hh>:<base64(key || CRC-32(key) little-endian)>:", hh two decimal digits 00..max_hh,
// the trailing ':' optional. `what` names the kind in errors ("DH-HMAC-CHAP key"); `size_error`
// returns "" when a key of n bytes fits hh, else what was expected ("a 32-byte key"). Errors
// never repeat the key.
struct KeyText {
  int hh = 0;
  Bytes key;
  ~KeyText() { Wipe(key); }
};
absl::StatusOr<KeyText> ParseKeyText(std::string_view text, std::string_view prefix, int max_hh,
                                     std::string_view what,
                                     absl::FunctionRef<std::string(int hh, size_t n)> size_error);
std::string FormatKeyText(std::string_view prefix, int hh, ByteView key);

// Parses "DHHC-1:hh:base64:" (the trailing ':' optional, as the kernel accepts). Errors name what
// is wrong (prefix, hash, base64, length, CRC) without repeating the secret.
absl::StatusOr<DhchapKey> ParseDhchapKey(std::string_view text);
std::string FormatDhchapKey(const DhchapKey& key);

// The key as used in the exchange for `nqn` (the secret itself when transform is kNone).
Bytes TransformKey(const DhchapKey& key, std::string_view nqn);

// A new key like `nvme gen-dhchap-key`: `secret` (random when empty) of `length` bytes (32, 48 or
// 64), and with a transform hash the stored secret is already HMAC(secret, nqn ||
// "NVMe-over-Fabrics") (nvme-cli 2.x does the same, so keys from either tool are alike).
absl::StatusOr<DhchapKey> GenerateDhchapKey(HashId transform, size_t length, Bytes secret,
                                            std::string_view nqn);

// Reads a key from a file that holds it on its first line; the file must be a regular file not
// readable or writable by group or others (mode 0600 or stricter), like ssh private keys.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

}  // namespace nvmf_ublk::auth

#endif  // NVMF_UBLK_AUTH_DHCHAP_KEY_H_
