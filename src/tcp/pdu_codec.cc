#include "tcp/pdu_codec.h"

#include <algorithm>
#include <cstring>

#include "tcp/crc32c.h"

namespace nvmf_ublk::tcp {
namespace {

void FillCh(uint8_t* p, PduType type, uint8_t flags, uint8_t hlen, uint8_t pdo, uint32_t plen) {
  auto* ch = reinterpret_cast<CommonHeader*>(p);
  ch->pdu_type = static_cast<uint8_t>(type);
  ch->flags = flags;
  ch->hlen = hlen;
  ch->pdo = pdo;
  ch->plen.set(plen);
}

// Finishes a header of `hlen` bytes already in `out`: HDGST and padding. Returns the header length
// on the wire (PDO when data follows).
uint32_t Seal(uint8_t* out, uint32_t hlen, bool hdgst, uint32_t pdo) {
  uint32_t end = hlen;
  if (hdgst) {
    StoreLe32(out + hlen, Crc32c(out, hlen));
    end += kDigestSize;
  }
  if (pdo > end) {
    std::memset(out + end, 0, pdo - end);
    end = pdo;
  }
  return end;
}

// CH for a PDU of `hlen` header bytes with `datal` data bytes (0 = none).
uint32_t HeaderFor(uint8_t* out, PduType type, uint8_t flags, uint32_t hlen, uint32_t datal,
                   const WireFormat& wf) {
  const bool hd = wf.header_digest;
  const bool dd = wf.data_digest && datal > 0;
  const uint32_t pdo = datal > 0 ? DataOffset(hlen, hd, wf.data_alignment) : 0;
  const uint32_t plen =
      datal > 0 ? pdo + datal + (dd ? kDigestSize : 0) : hlen + (hd ? kDigestSize : 0);
  FillCh(out, type, flags | (hd ? kFlagHdgst : 0) | (dd ? kFlagDdgst : 0),
         static_cast<uint8_t>(hlen), static_cast<uint8_t>(pdo), plen);
  return pdo;
}

}  // namespace

uint32_t EncodeIcReq(uint8_t* out, uint8_t hpda, uint8_t dgst, uint32_t maxr2t_0based) {
  std::memset(out, 0, sizeof(IcReqPdu));
  FillCh(out, PduType::kIcReq, 0, sizeof(IcReqPdu), 0, sizeof(IcReqPdu));
  auto* p = reinterpret_cast<IcReqPdu*>(out);
  p->pfv.set(kPfv10);
  p->hpda = hpda;
  p->dgst = dgst;
  p->maxr2t.set(maxr2t_0based);
  return sizeof(IcReqPdu);
}

uint32_t EncodeIcResp(uint8_t* out, uint8_t cpda, uint8_t dgst, uint32_t maxh2cdata) {
  std::memset(out, 0, sizeof(IcRespPdu));
  FillCh(out, PduType::kIcResp, 0, sizeof(IcRespPdu), 0, sizeof(IcRespPdu));
  auto* p = reinterpret_cast<IcRespPdu*>(out);
  p->pfv.set(kPfv10);
  p->cpda = cpda;
  p->dgst = dgst;
  p->maxh2cdata.set(maxh2cdata);
  return sizeof(IcRespPdu);
}

uint32_t EncodeCapsuleCmd(uint8_t* out, const nvme::Sqe& sqe, uint32_t in_capsule_len,
                          const WireFormat& wf) {
  const uint32_t pdo =
      HeaderFor(out, PduType::kCapsuleCmd, 0, sizeof(CapsuleCmdPdu), in_capsule_len, wf);
  std::memcpy(out + offsetof(CapsuleCmdPdu, sqe), &sqe, sizeof(sqe));
  return Seal(out, sizeof(CapsuleCmdPdu), wf.header_digest, pdo);
}

uint32_t EncodeCapsuleResp(uint8_t* out, const nvme::Cqe& cqe, const WireFormat& wf) {
  HeaderFor(out, PduType::kCapsuleResp, 0, sizeof(CapsuleRespPdu), 0, wf);
  std::memcpy(out + offsetof(CapsuleRespPdu, cqe), &cqe, sizeof(cqe));
  return Seal(out, sizeof(CapsuleRespPdu), wf.header_digest, 0);
}

uint32_t EncodeDataPdu(uint8_t* out, PduType type, uint8_t flags, uint16_t cccid, uint16_t ttag,
                       uint32_t datao, uint32_t datal, const WireFormat& wf) {
  const uint32_t pdo = HeaderFor(out, type, flags, sizeof(DataPdu), datal, wf);
  auto* p = reinterpret_cast<DataPdu*>(out);
  p->cccid.set(cccid);
  p->ttag.set(ttag);
  p->datao.set(datao);
  p->datal.set(datal);
  std::memset(p->rsvd, 0, sizeof(p->rsvd));
  return Seal(out, sizeof(DataPdu), wf.header_digest, pdo);
}

uint32_t EncodeR2T(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t r2to, uint32_t r2tl,
                   const WireFormat& wf) {
  HeaderFor(out, PduType::kR2T, 0, sizeof(R2TPdu), 0, wf);
  auto* p = reinterpret_cast<R2TPdu*>(out);
  p->cccid.set(cccid);
  p->ttag.set(ttag);
  p->r2to.set(r2to);
  p->r2tl.set(r2tl);
  std::memset(p->rsvd, 0, sizeof(p->rsvd));
  return Seal(out, sizeof(R2TPdu), wf.header_digest, 0);
}

uint32_t EncodeTermReq(uint8_t* out, PduType type, Fes fes, uint32_t fei,
                       std::span<const uint8_t> offending) {
  const uint32_t n = static_cast<uint32_t>(std::min<size_t>(offending.size(), kTermReqMaxData));
  std::memset(out, 0, sizeof(TermReqPdu));
  FillCh(out, type, 0, sizeof(TermReqPdu), 0, sizeof(TermReqPdu) + n);
  auto* p = reinterpret_cast<TermReqPdu*>(out);
  p->fes.set(static_cast<uint16_t>(fes));
  p->fei.set(fei);
  if (n > 0) std::memcpy(out + sizeof(TermReqPdu), offending.data(), n);
  return sizeof(TermReqPdu) + n;
}

void AppendPdu(std::vector<uint8_t>* out, const uint8_t* header, uint32_t header_len,
               std::span<const uint8_t> data, const WireFormat& wf) {
  out->insert(out->end(), header, header + header_len);
  if (data.empty()) return;
  out->insert(out->end(), data.begin(), data.end());
  if (wf.data_digest) {
    uint8_t d[4];
    StoreLe32(d, Crc32c(data.data(), data.size()));
    out->insert(out->end(), d, d + 4);
  }
}

}  // namespace nvmf_ublk::tcp
