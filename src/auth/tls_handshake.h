// A TLS 1.3 handshake with an external PSK (NVMe/TCP 1.0 §3.6.1: TLS_AES_128_GCM_SHA256 or
// TLS_AES_256_GCM_SHA384 by the PSK's hash, psk_dhe_ke), sans-I/O over OpenSSL with memory BIOs:
// bytes from the peer go in with Feed(), bytes to send come out of TakeOutput(). It carries no
// application data: once done() the transport hands the connection to kernel TLS with the
// application traffic keys (tx(), rx()), so NVMe/TCP PDUs keep going through io_uring as plain
// socket I/O. No session tickets are sent or accepted (kTLS would see them as records to handle).
#ifndef NVMF_UBLK_AUTH_TLS_HANDSHAKE_H_
#define NVMF_UBLK_AUTH_TLS_HANDSHAKE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "auth/crypto.h"

namespace nvmf_ublk::auth {

// One direction's record protection after the handshake: AES-GCM key, the 12-byte IV (static
// part), and the next record sequence number.
struct TlsTrafficKeys {
  Bytes key;  // 16 (AES-128) or 32 (AES-256) bytes
  Bytes iv;   // 12 bytes
  uint64_t seq = 0;
  ~TlsTrafficKeys() {
    Wipe(key);
    Wipe(iv);
  }
};

// The PSK a server holds for an identity (nullopt: unknown identity).
struct TlsServerPsk {
  Bytes key;
  HashId hash = HashId::kSha256;
};
using TlsPskLookup = std::function<std::optional<TlsServerPsk>(std::string_view identity)>;

class TlsHandshake {
 public:
  // The client offers `identity` with `psk` (32 bytes: SHA-256 suite; 48: SHA-384).
  static absl::StatusOr<std::unique_ptr<TlsHandshake>> Client(std::string identity, Bytes psk,
                                                              HashId hash);
  // A server that accepts the identities `lookup` knows (tools/nvmf-target, tests).
  static absl::StatusOr<std::unique_ptr<TlsHandshake>> Server(TlsPskLookup lookup);
  ~TlsHandshake();

  // Client: produces the ClientHello. Server: nothing to do until Feed().
  absl::Status Start();
  // Bytes from the peer. An error is the handshake's end (a clear reason: unknown identity, wrong
  // key, no common cipher, a malformed message); TakeOutput() may still hold an alert to send.
  absl::Status Feed(ByteView in);
  Bytes TakeOutput();
  bool done() const { return done_; }
  // After done(): bytes the peer sent after its last handshake message (records of the
  // application epoch). Non-zero means they must be given to kernel TLS first; the NVMe/TCP
  // peers send nothing until the host's ICReq, so a transport may refuse it.
  size_t trailing_bytes() const;
  const TlsTrafficKeys& tx() const { return tx_; }
  const TlsTrafficKeys& rx() const { return rx_; }
  HashId hash() const { return hash_; }
  // After done(): `plaintext` as one application-data record from OpenSSL's own record layer
  // (SSL_write). Not for transports (kernel TLS sends); it lets tests prove that tx()/rx() are
  // the keys OpenSSL uses.
  absl::StatusOr<Bytes> SealRecordWithOpenSsl(ByteView plaintext);
  const std::string& identity() const { return identity_; }  // server: the one the client used

 private:
  struct Impl;
  TlsHandshake();
  absl::Status Init(bool server);
  absl::Status Step();
  absl::Status Finish();

  std::unique_ptr<Impl> impl_;
  bool server_ = false;
  bool done_ = false;
  HashId hash_ = HashId::kSha256;
  std::string identity_;
  Bytes psk_;
  TlsPskLookup lookup_;
  Bytes client_secret_, server_secret_;  // application traffic secrets (keylog)
  TlsTrafficKeys tx_, rx_;
};

}  // namespace nvmf_ublk::auth

#endif  // NVMF_UBLK_AUTH_TLS_HANDSHAKE_H_
