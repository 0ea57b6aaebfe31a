// Push parser for an NVMe/TCP byte stream: accepts bytes in any fragmentation (down to one byte at
// a time) and hands each PDU to a PduReceiver.
//
// The parser checks everything that can be checked from a PDU alone: type allowed for the
// direction, HLEN, FLAGS (digest flags agree with the negotiated digests, no reserved bits,
// LAST_PDU/SUCCESS only on data PDUs), PDO (alignment, not inside the header), PLEN (consistent
// with HLEN/PDO/DATAL and within limits), the header digest, and the data digest. A violation
// becomes a PduError with the Fatal Error Status and field offset that an H2CTermReq/C2HTermReq
// would carry (§3.6.2.3, §7.4.9). Checks that need protocol state (is this CID outstanding, does
// this offset fit the command) belong to the receiver, which returns a PduError from its callbacks.
//
// Data lands where the receiver says (OnPduHeader's destination), so C2HData payload goes straight
// into the I/O's buffer. A transport may also receive directly into RecvBuffer() to skip a copy.
#ifndef NVMF_UBLK_TCP_PDU_PARSER_H_
#define NVMF_UBLK_TCP_PDU_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "tcp/pdu.h"

namespace nvmf_ublk::tcp {

// A fatal protocol error: what a TermReq carries, plus a message for humans.
struct PduError {
  Fes fes;
  uint32_t fei;         // Byte offset of the offending field (FES 01h, 06h); 0 otherwise
  std::string message;  // e.g. "C2HData DATAL 0 is invalid"
};

// Which PDUs the stream carries: a host receives controller-to-host PDUs, a controller receives
// host-to-controller PDUs.
enum class StreamDirection { kControllerToHost, kHostToController };

struct PduParserOptions {
  StreamDirection direction = StreamDirection::kControllerToHost;
  bool header_digest = false;    // negotiated HDGST
  bool data_digest = false;      // negotiated DDGST
  uint32_t data_alignment = 4;   // PDO of incoming data PDUs must be a multiple of this (our PDA)
  uint32_t max_data = 1u << 20;  // largest DATAL (or in-capsule data) accepted in one PDU
};

// A validated PDU header, valid during the receiver callbacks.
struct PduHeader {
  PduType type;
  uint8_t flags;
  uint8_t hlen;
  uint8_t pdo;
  uint32_t plen;
  uint32_t data_len;     // payload bytes (excluding padding and digest); 0 if none
  const uint8_t* bytes;  // HLEN bytes: CH + PSH
  template <typename T>
  const T& as() const {
    return *reinterpret_cast<const T*>(bytes);
  }
};

class PduReceiver {
 public:
  virtual ~PduReceiver() = default;
  // The header arrived and passed the structural checks and the header digest. For a PDU with
  // data_len > 0 other than a TermReq, set *data_dest to data_len writable bytes. Returning an
  // error stops the stream.
  virtual std::optional<PduError> OnPduHeader(const PduHeader& header, uint8_t** data_dest) = 0;
  // The whole PDU (data and data digest included) arrived. `data_digest_ok` is false when the data
  // digest did not match: the data was written but must not be trusted. For a TermReq, `term_data`
  // holds the offending header it carries (header.data_len bytes).
  virtual std::optional<PduError> OnPduComplete(const PduHeader& header, bool data_digest_ok,
                                                const uint8_t* term_data) = 0;
};

class PduParser {
 public:
  PduParser(const PduParserOptions& options, PduReceiver* receiver);

  // Changes digests/alignment/limits; takes effect from the next PDU. Used right after ICResp.
  void Reconfigure(const PduParserOptions& options) { options_ = options; }
  const PduParserOptions& options() const { return options_; }

  // Copies `len` bytes in. Returns the number consumed: `len`, or fewer if the stream failed.
  size_t Feed(const uint8_t* data, size_t len);

  // Zero-copy receive: where the next bytes belong and how many are wanted at most. After writing
  // n <= size bytes there, call Commit(n). Returns an empty span once failed.
  std::span<uint8_t> RecvBuffer();
  // Returns false if the stream failed (see error()).
  bool Commit(size_t n);

  bool failed() const { return state_ == State::kFailed; }
  const PduError& error() const { return error_; }
  // The header of the PDU being parsed when the error happened (for the TermReq's data), up to
  // kTermReqMaxData bytes.
  std::span<const uint8_t> offending_header() const;
  // True between PDUs (no partial PDU buffered).
  bool at_pdu_boundary() const { return state_ == State::kHeader && got_ == 0; }

 private:
  enum class State { kHeader, kPadding, kData, kDataDigest, kFailed };

  bool Fail(Fes fes, uint32_t fei, std::string message);
  bool OnCommonHeader();
  bool OnFullHeader();
  bool StartData();
  bool FinishPdu();

  PduParserOptions options_;
  PduReceiver* receiver_;
  State state_ = State::kHeader;
  PduError error_{};

  // Header in progress: common header first (8 bytes), then the rest of HLEN plus HDGST.
  alignas(8) uint8_t header_[256];
  uint32_t got_ = 0;    // bytes of the current state's unit received
  uint32_t want_ = 8;   // bytes of the current state's unit expected
  bool hdgst_ = false;  // current PDU carries HDGST
  bool ddgst_ = false;  // current PDU carries DDGST
  PduHeader current_{};

  uint8_t* data_dest_ = nullptr;
  uint32_t data_crc_ = 0;
  uint8_t digest_[4];
  uint8_t scratch_[256];  // padding (discarded) and TermReq data
};

}  // namespace nvmf_ublk::tcp

#endif  // NVMF_UBLK_TCP_PDU_PARSER_H_
