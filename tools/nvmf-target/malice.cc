// Deliberate protocol violations (FaultConfig::malice): what a hostile or broken controller sends,
// for tests that the host detects each one, answers it with an H2CTermReq where the spec says so,
// and recovers without losing or corrupting data. After a violation the connection is left open,
// so that the host's H2CTermReq (or its close) arrives and is counted; the host tears it down.
#include <nvme/types.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_format.h"
#include "base/endian.h"
#include "base/log.h"
#include "connection.h"
#include "internal.h"
#include "target.h"

namespace nvmf_ublk::target {
namespace {

uint32_t BitsFor(uint32_t n) {
  uint32_t bits = 0;
  while ((1u << bits) < n) ++bits;
  return bits;
}

bool Fits(Malice m, nvme::DataDirection dir, uint32_t len, uint8_t sgl_id, bool header_digest,
          bool sqfc_disabled, uint64_t host_maxr2t) {
  const bool read = dir == nvme::DataDirection::kControllerToHost && len >= 1024;
  const bool write = dir == nvme::DataDirection::kHostToController && len > 0;
  switch (TargetOf(m)) {
    case MaliceTarget::kAny:
      return m != Malice::kHeaderDigestBad || header_digest;
    case MaliceTarget::kRead:
      return read && (m != Malice::kC2HSuccessWithSqfc || !sqfc_disabled);
    case MaliceTarget::kWrite:
      return write;
    case MaliceTarget::kR2TWrite:
      return write && sgl_id == nvme::kSglIdTransport && len >= 512 * (host_maxr2t + 1);
    case MaliceTarget::kIcResp:
    case MaliceTarget::kAdminAnswer:
      return false;
  }
  return false;
}

}  // namespace

void Connection::MaybeArmMalice(Request& req, FaultState& fs) {
  const FaultConfig& f = fs.config;
  if (f.malice == Malice::kNone || commands_ <= f.malice_after) return;
  if (!Fits(f.malice, req.dir, req.xfer_len, req.sqe.dptr.sgl_id, wire_.header_digest,
            sq_flow_control_disabled_, host_maxr2t_)) {
    return;
  }
  if (!FaultState::Take(fs.malice)) return;
  req.malice = f.malice;
  NLOG(INFO) << name_ << ": malice " << target::ToString(f.malice) << " on "
             << nvme::CommandName(req.sqe, qid_ == 0) << " CID " << req.cid;
}

void Connection::ApplyIcRespMalice(tcp::IcRespPdu* resp) {
  std::shared_ptr<FaultState> fs = target_->FaultFor(port_index_);
  if (!fs || TargetOf(fs->config.malice) != MaliceTarget::kIcResp) return;
  if (!FaultState::Take(fs->malice)) return;
  switch (fs->config.malice) {
    case Malice::kIcRespPfv:
      resp->pfv.set(1);
      break;
    case Malice::kIcRespCpda:
      resp->cpda = 32;
      break;
    case Malice::kIcRespMaxH2CSmall:
      resp->maxh2cdata.set(1024);
      break;
    case Malice::kIcRespMaxH2CUnaligned:
      resp->maxh2cdata.set(4098);
      break;
    default:
      return;
  }
  target_->stats_.malice++;
  NLOG(INFO) << name_ << ": malice " << target::ToString(fs->config.malice) << " in the ICResp";
}

uint16_t Connection::CidNotOutstanding(uint16_t near_cid) const {
  // nvmf-ublk's host has sq_entries - 1 slots indexed by the low bits: an index past the last slot
  // is never outstanding. With a power-of-two depth there is none; flip the top bit instead.
  const uint32_t depth = sq_entries_ - 1;
  const uint32_t bits = BitsFor(depth);
  if (depth < (1u << bits)) return static_cast<uint16_t>((near_cid & ~((1u << bits) - 1)) | depth);
  return static_cast<uint16_t>(near_cid ^ 0x8000);
}

bool Connection::RespondMaliciously(Request& req) {
  const Malice m = req.malice;
  const bool read =
      req.dir == nvme::DataDirection::kControllerToHost && req.status == 0 && req.xfer_len > 0;
  if (read) req.data.resize(req.xfer_len);
  const uint32_t len = req.xfer_len;
  std::vector<uint8_t>& out = out_;
  auto c2h = [&](uint32_t off, uint32_t n, uint8_t flags = 0) {
    uint8_t hdr[tcp::kMaxHeaderBytes];
    const uint32_t hl =
        tcp::EncodeDataPdu(hdr, tcp::PduType::kC2HData, flags, req.cid, 0, off, n, wire_);
    std::vector<uint8_t> payload(n, 0x6D);
    if (off < req.data.size()) {
      std::memcpy(payload.data(), req.data.data() + off,
                  std::min<size_t>(n, req.data.size() - off));
    }
    tcp::AppendPdu(&out, hdr, hl, payload, wire_);
  };
  auto all_data = [&] {
    if (read) c2h(0, len, tcp::kFlagLastPdu);
  };
  auto resp = [&](uint16_t cid) {
    nvme::Cqe cqe = MakeCqe(req);
    cqe.cid.set(cid);
    const size_t at = out.size();
    EncodeCapsuleResp(cqe, &out);
    return at;  // where the PDU starts in out_
  };
  switch (m) {
    case Malice::kRespPlenBelowHlen:
      all_data();
      StoreLe32(out.data() + resp(req.cid) + 4, 8);
      break;
    case Malice::kRespPlenWrong: {
      all_data();
      const size_t at = resp(req.cid);
      StoreLe32(out.data() + at + 4, LoadLe32(out.data() + at + 4) + 4);
      out.insert(out.end(), 4, 0);
      break;
    }
    case Malice::kRespHlenWrong:
      all_data();
      out[resp(req.cid) + 2] = 16;
      break;
    case Malice::kCidUnknown:
      all_data();
      resp(CidNotOutstanding(req.cid));
      break;
    case Malice::kCidNextGeneration: {
      all_data();
      const uint32_t bits = BitsFor(sq_entries_ - 1);
      resp(static_cast<uint16_t>(req.cid + (1u << bits)));
      break;
    }
    case Malice::kDuplicateResp:
      all_data();
      resp(req.cid);
      resp(req.cid);
      break;
    case Malice::kUnknownPduType: {
      const uint8_t pdu[8] = {0x0C, 0, 8, 0, 8, 0, 0, 0};
      out.insert(out.end(), pdu, pdu + 8);
      break;
    }
    case Malice::kStallMidPdu: {
      all_data();
      const size_t at = resp(req.cid);
      out.resize(at + 12);
      stalled_ = true;
      stall_at_ = out.size();
      break;
    }
    case Malice::kHeaderDigestBad:
      all_data();
      out[resp(req.cid) + sizeof(tcp::CapsuleRespPdu)] ^= 0x5A;
      break;
    case Malice::kTermReqMidData: {
      c2h(0, len / 2);
      uint8_t hdr[tcp::kMaxHeaderBytes];
      const uint32_t n =
          tcp::EncodeTermReq(hdr, tcp::PduType::kC2HTermReq, tcp::Fes::kInvalidHeaderField, 0, {});
      out.insert(out.end(), hdr, hdr + n);
      target_->stats_.term_reqs++;
      break;
    }
    case Malice::kC2HPlenHuge: {
      const size_t at = out.size();
      c2h(0, len, tcp::kFlagLastPdu);
      StoreLe32(out.data() + at + 4, 0xFFFFFFFF);
      break;
    }
    case Malice::kC2HPdoInHeader: {
      const size_t at = out.size();
      c2h(0, len, tcp::kFlagLastPdu);
      out[at + 3] = 8;
      break;
    }
    case Malice::kC2HPdoPastPlen: {
      // A 4-byte C2HData (PLEN 28) whose PDO points past its end.
      const size_t at = out.size();
      c2h(0, 4);
      out[at + 3] = 32;
      break;
    }
    case Malice::kC2HBeyondLength:
      c2h(0, len + 512, tcp::kFlagLastPdu);
      resp(req.cid);
      break;
    case Malice::kC2HGap:
      c2h(512, len - 512, tcp::kFlagLastPdu);
      resp(req.cid);
      break;
    case Malice::kC2HOverlap:
      c2h(0, len / 2);
      c2h(len / 4, len - len / 4, tcp::kFlagLastPdu);
      resp(req.cid);
      break;
    case Malice::kC2HOutOfOrder:
      c2h(len / 2, len - len / 2, tcp::kFlagLastPdu);
      c2h(0, len / 2);
      resp(req.cid);
      break;
    case Malice::kC2HAfterResp:
      all_data();
      resp(req.cid);
      c2h(0, len, tcp::kFlagLastPdu);
      break;
    case Malice::kC2HSuccessWithSqfc:
      c2h(0, len, tcp::kFlagLastPdu | tcp::kFlagSuccess);
      break;
    case Malice::kR2TOnRead: {
      uint8_t hdr[tcp::kMaxHeaderBytes];
      const uint32_t n = tcp::EncodeR2T(hdr, req.cid, 0x100, 0, len, wire_);
      tcp::AppendPdu(&out, hdr, n, {}, wire_);
      break;
    }
    case Malice::kReadDoneEarly:
      c2h(0, len / 2);
      resp(req.cid);
      break;
    case Malice::kC2HOnWrite:
      c2h(0, std::min<uint32_t>(len, 512), tcp::kFlagLastPdu);
      resp(req.cid);
      break;
    default:
      return false;  // the R2T kinds act earlier, on the data transfer
  }
  target_->stats_.malice++;
  if (req.track) active_cids_.erase(req.cid);
  return true;
}

bool Connection::IssueMaliciousR2Ts(PendingWrite& w) {
  const uint32_t len = w.req.xfer_len;
  const uint16_t cid = w.req.cid;
  auto r2t = [&](uint16_t ttag, uint32_t off, uint32_t n) {
    uint8_t hdr[tcp::kMaxHeaderBytes];
    const uint32_t hl = tcp::EncodeR2T(hdr, cid, ttag, off, n, wire_);
    const size_t at = out_.size();
    tcp::AppendPdu(&out_, hdr, hl, {}, wire_);
    // Data the host sends for a range inside the write is accepted (first use of a TTAG wins).
    if (uint64_t{off} + n <= len) r2ts_.emplace(ttag, R2tState{cid, off, n});
    ++w.outstanding;
    target_->stats_.r2ts++;
    return at;
  };
  auto fresh_ttag = [&] {
    uint16_t ttag = next_ttag_++;
    while (ttag == 0xFFFF || r2ts_.count(ttag)) ttag = next_ttag_++;
    return ttag;
  };
  switch (w.req.malice) {
    case Malice::kR2TPlenWrong: {
      const size_t at = r2t(fresh_ttag(), 0, len);
      StoreLe32(out_.data() + at + 4, LoadLe32(out_.data() + at + 4) + 4);
      out_.insert(out_.end(), 4, 0);
      break;
    }
    case Malice::kR2TBeyondLength:
      r2t(fresh_ttag(), 0, len + 4096);
      break;
    case Malice::kR2TOverlap:
      r2t(fresh_ttag(), 0, len / 2);
      r2t(fresh_ttag(), len / 4, len / 2);
      break;
    case Malice::kR2TReusedTtag: {
      const uint16_t ttag = fresh_ttag();
      r2t(ttag, 0, len / 2);
      r2t(ttag, len / 2, len - len / 2);
      break;
    }
    case Malice::kR2TTooMany: {
      const uint32_t n = static_cast<uint32_t>(host_maxr2t_) + 1;
      const uint32_t chunk = (len / n) & ~3u;
      for (uint32_t i = 0; i < n; ++i) {
        const uint32_t off = i * chunk;
        r2t(fresh_ttag(), off, i + 1 == n ? len - off : chunk);
      }
      break;
    }
    case Malice::kWriteDoneBeforeR2T: {
      NLOG(INFO) << name_ << ": malice: CID " << cid << " completed without asking for its data";
      Request req = std::move(w.req);
      writes_.erase(cid);
      req.dir = nvme::DataDirection::kNone;
      req.malice = Malice::kNone;
      target_->stats_.malice++;
      Respond(req);
      return true;
    }
    case Malice::kWriteDoneAfterHalf:
      w.end = len / 2;  // OnH2CDataComplete answers success when these arrived
      return false;
    default:
      return false;
  }
  w.requested = len;  // nothing more is asked for
  target_->stats_.malice++;
  return true;
}

void Connection::ApplyAdminAnswerMalice(nvme::AdminOpcode opcode, uint8_t sub, uint8_t* data,
                                        size_t len) {
  std::shared_ptr<FaultState> fs = target_->FaultFor(port_index_);
  if (!fs || TargetOf(fs->config.malice) != MaliceTarget::kAdminAnswer) return;
  const Malice m = fs->config.malice;
  const bool identify = opcode == nvme::AdminOpcode::kIdentify;
  const bool log = opcode == nvme::AdminOpcode::kGetLogPage;
  bool fits = false;
  switch (m) {
    case Malice::kIdentifyNn0:
      fits = identify && sub == 0x01 && len >= offsetof(nvme_id_ctrl, nn) + 4;
      break;
    case Malice::kIdentifyLbads40:
    case Malice::kIdentifyNsze0:
      fits = identify && sub == 0x00 && len >= sizeof(nvme_id_ns);
      break;
    case Malice::kDiscoveryNumrecBig:
      fits = log && sub == static_cast<uint8_t>(nvme::LogPageId::kDiscovery) &&
             len >= sizeof(nvmf_discovery_log);
      break;
    case Malice::kAnaNgrpsBig:
      fits =
          log && sub == static_cast<uint8_t>(nvme::LogPageId::kAna) && len >= sizeof(nvme_ana_log);
      break;
    default:
      break;
  }
  if (!fits || !FaultState::Take(fs->malice)) return;
  switch (m) {
    case Malice::kIdentifyNn0:
      StoreLe32(data + offsetof(nvme_id_ctrl, nn), 0);
      break;
    case Malice::kIdentifyLbads40: {
      const uint8_t format = data[offsetof(nvme_id_ns, flbas)] & 0x0F;
      data[offsetof(nvme_id_ns, lbaf) + format * sizeof(nvme_lbaf) + offsetof(nvme_lbaf, ds)] = 40;
      break;
    }
    case Malice::kIdentifyNsze0:
      StoreLe64(data + offsetof(nvme_id_ns, nsze), 0);
      break;
    case Malice::kDiscoveryNumrecBig: {
      uint8_t* p = data + offsetof(nvmf_discovery_log, numrec);
      StoreLe64(p, LoadLe64(p) + 4);
      break;
    }
    case Malice::kAnaNgrpsBig: {
      uint8_t* p = data + offsetof(nvme_ana_log, ngrps);
      StoreLe16(p, static_cast<uint16_t>(LoadLe16(p) + 4));
      break;
    }
    default:
      return;
  }
  target_->stats_.malice++;
  NLOG(INFO) << name_ << ": malice " << target::ToString(m) << " in the "
             << (identify ? "Identify" : "Get Log Page") << " answer";
}

}  // namespace nvmf_ublk::target
