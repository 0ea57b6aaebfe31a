// Encoders for every NVMe/TCP PDU header. Each writes CH + PSH, the header digest when enabled, and
// zero padding up to PDO for data-carrying PDUs, into `out` (at least kMaxHeaderBytes long) and
// returns the number of header bytes written (the PDO for PDUs with data). Data and the data digest
// follow on the wire; AppendPdu() assembles a whole PDU into a vector for tests and the test
// target.
#ifndef NVMF_UBLK_TCP_PDU_CODEC_H_
#define NVMF_UBLK_TCP_PDU_CODEC_H_

#include <cstdint>
#include <span>
#include <vector>

#include "nvme/spec.h"
#include "tcp/pdu.h"

namespace nvmf_ublk::tcp {

inline constexpr uint32_t kMaxHeaderBytes = 256;

// Digest and alignment settings of the sender for one connection.
struct WireFormat {
  bool header_digest = false;
  bool data_digest = false;
  uint32_t data_alignment = 4;  // the receiver's PDA in bytes: CPDA for H2C, HPDA for C2H
};

uint32_t EncodeIcReq(uint8_t* out, uint8_t hpda, uint8_t dgst, uint32_t maxr2t_0based);
uint32_t EncodeIcResp(uint8_t* out, uint8_t cpda, uint8_t dgst, uint32_t maxh2cdata);
// CapsuleCmd carrying `in_capsule_len` bytes of data (0 for none).
uint32_t EncodeCapsuleCmd(uint8_t* out, const nvme::Sqe& sqe, uint32_t in_capsule_len,
                          const WireFormat& wf);
uint32_t EncodeCapsuleResp(uint8_t* out, const nvme::Cqe& cqe, const WireFormat& wf);
// H2CData or C2HData; `flags` may add kFlagLastPdu / kFlagSuccess.
uint32_t EncodeDataPdu(uint8_t* out, PduType type, uint8_t flags, uint16_t cccid, uint16_t ttag,
                       uint32_t datao, uint32_t datal, const WireFormat& wf);
uint32_t EncodeR2T(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t r2to, uint32_t r2tl,
                   const WireFormat& wf);
// H2CTermReq or C2HTermReq with up to kTermReqMaxData bytes of the offending header (truncated).
uint32_t EncodeTermReq(uint8_t* out, PduType type, Fes fes, uint32_t fei,
                       std::span<const uint8_t> offending);

// Appends a whole PDU: header bytes from an Encode* call, then `data` and its digest if enabled.
void AppendPdu(std::vector<uint8_t>* out, const uint8_t* header, uint32_t header_len,
               std::span<const uint8_t> data, const WireFormat& wf);

}  // namespace nvmf_ublk::tcp

#endif  // NVMF_UBLK_TCP_PDU_CODEC_H_
