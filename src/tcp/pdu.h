// NVMe/TCP PDU wire structures (NVMe/TCP Transport Specification 1.0, §3.6).
//
// Every PDU starts with the 8-byte common header (CH); the PDU-specific header (PSH) follows, then
// an optional header digest (HDGST, CRC32C of CH+PSH), padding up to PDO, data, and an optional
// data digest (DDGST, CRC32C of the data). HLEN counts CH+PSH only; PLEN counts everything.
#ifndef NVMF_UBLK_TCP_PDU_H_
#define NVMF_UBLK_TCP_PDU_H_

#include <cstddef>
#include <cstdint>

#include "base/endian.h"
#include "nvme/spec.h"

namespace nvmf_ublk::tcp {

// PDU-Type values (§3.6.1, Figure 5).
enum class PduType : uint8_t {
  kIcReq = 0x00,
  kIcResp = 0x01,
  kH2CTermReq = 0x02,
  kC2HTermReq = 0x03,
  kCapsuleCmd = 0x04,
  kCapsuleResp = 0x05,
  kH2CData = 0x06,
  kC2HData = 0x07,
  kR2T = 0x09,
};
const char* ToString(PduType type);

// Common header FLAGS (§3.6.1, Figure 6). LAST_PDU and SUCCESS exist only on data PDUs.
inline constexpr uint8_t kFlagHdgst = 1u << 0;
inline constexpr uint8_t kFlagDdgst = 1u << 1;
inline constexpr uint8_t kFlagLastPdu = 1u << 2;
inline constexpr uint8_t kFlagSuccess = 1u << 3;
inline constexpr uint8_t kFlagsReservedMask = 0xF0;

inline constexpr uint32_t kDigestSize = 4;
inline constexpr uint16_t kPfv10 = 0;  // PDU Format Version 1.0
// ICReq/ICResp DGST bits (Figure 21/22).
inline constexpr uint8_t kDgstHeader = 1u << 0;
inline constexpr uint8_t kDgstData = 1u << 1;
// Limits: MAXH2CDATA must be >= 4096 and a multiple of 4 (Figure 22); HPDA/CPDA are 0..31 dwords.
inline constexpr uint32_t kMinMaxH2CData = 4096;
inline constexpr uint8_t kMaxPda = 31;
// A TermReq carries at most this many bytes of the offending PDU header (Figure 25/26).
inline constexpr uint32_t kTermReqMaxData = 128;

struct CommonHeader {
  uint8_t pdu_type;  // PDU-Type
  uint8_t flags;     // FLAGS
  uint8_t hlen;      // Header Length (CH + PSH)
  uint8_t pdo;       // PDU Data Offset (0 if no data)
  Le32 plen;         // PDU Length (whole PDU)
};
static_assert(sizeof(CommonHeader) == 8);
static_assert(offsetof(CommonHeader, pdu_type) == 0);
static_assert(offsetof(CommonHeader, flags) == 1);
static_assert(offsetof(CommonHeader, hlen) == 2);
static_assert(offsetof(CommonHeader, pdo) == 3);
static_assert(offsetof(CommonHeader, plen) == 4);

// Initialize Connection Request (Figure 21), 128 bytes.
struct IcReqPdu {
  CommonHeader ch;
  Le16 pfv;      // PDU Format Version
  uint8_t hpda;  // Host PDU Data Alignment, in dwords minus 1
  uint8_t dgst;  // Digest types enabled: bit 0 HDGST_ENABLE, bit 1 DDGST_ENABLE
  Le32 maxr2t;   // Maximum outstanding R2Ts per command, 0-based
  uint8_t rsvd[112];
};
static_assert(sizeof(IcReqPdu) == 128);
static_assert(offsetof(IcReqPdu, pfv) == 8);
static_assert(offsetof(IcReqPdu, hpda) == 10);
static_assert(offsetof(IcReqPdu, dgst) == 11);
static_assert(offsetof(IcReqPdu, maxr2t) == 12);

// Initialize Connection Response (Figure 22), 128 bytes.
struct IcRespPdu {
  CommonHeader ch;
  Le16 pfv;         // PDU Format Version
  uint8_t cpda;     // Controller PDU Data Alignment, in dwords minus 1
  uint8_t dgst;     // Digest types enabled
  Le32 maxh2cdata;  // Maximum H2C data bytes per H2CData PDU
  uint8_t rsvd[112];
};
static_assert(sizeof(IcRespPdu) == 128);
static_assert(offsetof(IcRespPdu, pfv) == 8);
static_assert(offsetof(IcRespPdu, cpda) == 10);
static_assert(offsetof(IcRespPdu, dgst) == 11);
static_assert(offsetof(IcRespPdu, maxh2cdata) == 12);

// H2CTermReq / C2HTermReq header (Figures 25/26), 24 bytes; followed by the offending PDU header.
struct TermReqPdu {
  CommonHeader ch;
  Le16 fes;  // Fatal Error Status
  Le32 fei;  // Fatal Error Information (field offset for FES 1h and 6h)
  uint8_t rsvd[10];
};
static_assert(sizeof(TermReqPdu) == 24);
static_assert(offsetof(TermReqPdu, fes) == 8);
static_assert(offsetof(TermReqPdu, fei) == 10);

// Fatal Error Status values (Figure 25).
enum class Fes : uint16_t {
  kInvalidHeaderField = 0x01,
  kPduSequenceError = 0x02,
  kHeaderDigestError = 0x03,
  kDataOutOfRange = 0x04,
  kR2TLimitExceeded = 0x05,
  kUnsupportedParameter = 0x06,
};
const char* ToString(Fes fes);

// CapsuleCmd (Figure 23): CH + 64-byte SQE. Data, if any, is in-capsule.
struct CapsuleCmdPdu {
  CommonHeader ch;
  nvme::Sqe sqe;
};
static_assert(sizeof(CapsuleCmdPdu) == 72);
static_assert(offsetof(CapsuleCmdPdu, sqe) == 8);

// CapsuleResp (Figure 24): CH + 16-byte CQE.
struct CapsuleRespPdu {
  CommonHeader ch;
  nvme::Cqe cqe;
};
static_assert(sizeof(CapsuleRespPdu) == 24);
static_assert(offsetof(CapsuleRespPdu, cqe) == 8);

// H2CData (Figure 27) and C2HData (Figure 28) share a layout; C2HData has no TTAG.
struct DataPdu {
  CommonHeader ch;
  Le16 cccid;  // Command Capsule CID
  Le16 ttag;   // Transfer Tag (H2CData; reserved in C2HData)
  Le32 datao;  // Data Offset within the command's data
  Le32 datal;  // Data Length of this PDU
  uint8_t rsvd[4];
};
static_assert(sizeof(DataPdu) == 24);
static_assert(offsetof(DataPdu, cccid) == 8);
static_assert(offsetof(DataPdu, ttag) == 10);
static_assert(offsetof(DataPdu, datao) == 12);
static_assert(offsetof(DataPdu, datal) == 16);

// Ready to Transfer (Figure 29).
struct R2TPdu {
  CommonHeader ch;
  Le16 cccid;  // Command Capsule CID
  Le16 ttag;   // Transfer Tag, echoed in the H2CData PDUs
  Le32 r2to;   // R2T Offset
  Le32 r2tl;   // R2T Length
  uint8_t rsvd[4];
};
static_assert(sizeof(R2TPdu) == 24);
static_assert(offsetof(R2TPdu, cccid) == 8);
static_assert(offsetof(R2TPdu, ttag) == 10);
static_assert(offsetof(R2TPdu, r2to) == 12);
static_assert(offsetof(R2TPdu, r2tl) == 16);

// HLEN of each PDU type (fixed by the spec).
inline constexpr uint8_t HeaderLength(PduType type) {
  switch (type) {
    case PduType::kIcReq:
    case PduType::kIcResp:
      return 128;
    case PduType::kCapsuleCmd:
      return 72;
    case PduType::kH2CTermReq:
    case PduType::kC2HTermReq:
    case PduType::kCapsuleResp:
    case PduType::kH2CData:
    case PduType::kC2HData:
    case PduType::kR2T:
      return 24;
  }
  return 0;
}

// Whether the PDU type may carry a header digest (all but ICReq/ICResp/TermReq, §3.6.2.2).
inline constexpr bool MayHaveHeaderDigest(PduType type) {
  return type != PduType::kIcReq && type != PduType::kIcResp && type != PduType::kH2CTermReq &&
         type != PduType::kC2HTermReq;
}

// Data alignment in bytes for a PDA value (HPDA/CPDA): (pda + 1) * 4.
inline constexpr uint32_t PdaBytes(uint8_t pda) { return (uint32_t{pda} + 1) * 4; }

// PDO for a data-carrying PDU: header (+ digest) rounded up to the receiver's data alignment.
inline constexpr uint32_t DataOffset(uint32_t hlen, bool hdgst, uint32_t align_bytes) {
  const uint32_t end = hlen + (hdgst ? kDigestSize : 0);
  return (end + align_bytes - 1) / align_bytes * align_bytes;
}

}  // namespace nvmf_ublk::tcp

#endif  // NVMF_UBLK_TCP_PDU_H_
