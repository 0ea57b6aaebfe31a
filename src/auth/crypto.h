// The cryptography of in-band authentication (NVMe Base 2.0 §8.13.5, DH-HMAC-CHAP), all from
// OpenSSL: SHA-2 hashes and HMACs, random bytes, and finite-field Diffie-Hellman over the RFC 7919
// groups. Nothing here is hand-rolled; this file only names what the protocol uses.
#ifndef NVMF_UBLK_AUTH_CRYPTO_H_
#define NVMF_UBLK_AUTH_CRYPTO_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace nvmf_ublk::auth {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

// Overwrites `b` with zeroes in a way the compiler keeps (OPENSSL_cleanse), then empties it.
void Wipe(Bytes& b);
inline ByteView View(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Hash functions (Base 2.0 Figure 597, "HashID"): the values on the wire and in "DHHC-1:<hh>:".
enum class HashId : uint8_t { kNone = 0, kSha256 = 1, kSha384 = 2, kSha512 = 3 };
size_t HashLength(HashId id);     // 32, 48, 64; 0 for kNone or an unknown value
const char* ToString(HashId id);  // "sha256", "sha384", "sha512", "none", "unknown"

// Diffie-Hellman groups (Base 2.0 Figure 598, "DH Group ID"); kNull = no DH exchange.
enum class DhGroup : uint8_t {
  kNull = 0,
  kFfdhe2048 = 1,
  kFfdhe3072 = 2,
  kFfdhe4096 = 3,
  kFfdhe6144 = 4,
  kFfdhe8192 = 5,
};
size_t DhValueLength(DhGroup g);  // bytes of a public value (the prime's size); 0 for kNull
const char* ToString(DhGroup g);  // "null", "ffdhe2048", ..., "unknown"
bool KnownDhGroup(uint8_t id);

Bytes RandomBytes(size_t n);
// HMAC(key, part0 || part1 || ...) with `hash` (not kNone).
Bytes Hmac(HashId hash, ByteView key, std::initializer_list<ByteView> parts);
Bytes Hash(HashId hash, ByteView data);
// Constant-time comparison of two equally long values.
bool SecureEqual(ByteView a, ByteView b);

// An ephemeral DH key pair in one group (never kNull).
class DhKeyPair {
 public:
  static absl::StatusOr<DhKeyPair> Generate(DhGroup group);
  DhKeyPair(DhKeyPair&&) noexcept;
  DhKeyPair& operator=(DhKeyPair&&) noexcept;
  ~DhKeyPair();
  DhGroup group() const { return group_; }
  // g^x mod p, big-endian, left-padded to DhValueLength(group()).
  const Bytes& public_value() const { return public_; }
  // (peer)^x mod p, big-endian, padded to DhValueLength(group()) like the kernel computes it.
  // Fails for a peer value of the wrong length or outside the group (0, 1, p-1, >= p, not in the
  // prime-order subgroup).
  absl::StatusOr<Bytes> SharedSecret(ByteView peer) const;

 private:
  struct Key;
  DhKeyPair(DhGroup group, std::unique_ptr<Key> key, Bytes pub);
  DhGroup group_;
  std::unique_ptr<Key> key_;
  Bytes public_;
};

}  // namespace nvmf_ublk::auth

#endif  // NVMF_UBLK_AUTH_CRYPTO_H_
