#include "tcp/pdu_parser.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "tcp/crc32c.h"

namespace nvmf_ublk::tcp {
namespace {

bool IsDataPdu(PduType t) { return t == PduType::kC2HData || t == PduType::kH2CData; }
bool IsTermReq(PduType t) { return t == PduType::kC2HTermReq || t == PduType::kH2CTermReq; }

bool AllowedType(StreamDirection dir, uint8_t type) {
  switch (static_cast<PduType>(type)) {
    case PduType::kIcResp:
    case PduType::kC2HTermReq:
    case PduType::kCapsuleResp:
    case PduType::kC2HData:
    case PduType::kR2T:
      return dir == StreamDirection::kControllerToHost;
    case PduType::kIcReq:
    case PduType::kH2CTermReq:
    case PduType::kCapsuleCmd:
    case PduType::kH2CData:
      return dir == StreamDirection::kHostToController;
  }
  return false;
}

// Byte offsets of common header fields, for FEI.
constexpr uint32_t kOffFlags = 1, kOffHlen = 2, kOffPdo = 3, kOffPlen = 4, kOffDatal = 16;

}  // namespace

const char* ToString(PduType type) {
  switch (type) {
    case PduType::kIcReq:
      return "ICReq";
    case PduType::kIcResp:
      return "ICResp";
    case PduType::kH2CTermReq:
      return "H2CTermReq";
    case PduType::kC2HTermReq:
      return "C2HTermReq";
    case PduType::kCapsuleCmd:
      return "CapsuleCmd";
    case PduType::kCapsuleResp:
      return "CapsuleResp";
    case PduType::kH2CData:
      return "H2CData";
    case PduType::kC2HData:
      return "C2HData";
    case PduType::kR2T:
      return "R2T";
  }
  return "unknown PDU";
}

const char* ToString(Fes fes) {
  switch (fes) {
    case Fes::kInvalidHeaderField:
      return "Invalid PDU Header Field";
    case Fes::kPduSequenceError:
      return "PDU Sequence Error";
    case Fes::kHeaderDigestError:
      return "Header Digest Error";
    case Fes::kDataOutOfRange:
      return "Data Transfer Out of Range";
    case Fes::kR2TLimitExceeded:
      return "Data Transfer Limit Exceeded";
    case Fes::kUnsupportedParameter:
      return "Unsupported Parameter";
  }
  return "unknown fatal error";
}

PduParser::PduParser(const PduParserOptions& options, PduReceiver* receiver)
    : options_(options), receiver_(receiver) {}

bool PduParser::Fail(Fes fes, uint32_t fei, std::string message) {
  error_ = PduError{fes, fei, std::move(message)};
  state_ = State::kFailed;
  return false;
}

std::span<const uint8_t> PduParser::offending_header() const {
  const uint32_t have = current_.bytes != nullptr ? current_.hlen : got_;
  return {header_, std::min<size_t>({have, kTermReqMaxData, sizeof(header_)})};
}

std::span<uint8_t> PduParser::RecvBuffer() {
  switch (state_) {
    case State::kHeader:
      return {header_ + got_, want_ - got_};
    case State::kPadding:
      return {scratch_, std::min<size_t>(want_ - got_, sizeof(scratch_))};
    case State::kData:
      return {data_dest_ + got_, want_ - got_};
    case State::kDataDigest:
      return {digest_ + got_, want_ - got_};
    case State::kFailed:
      break;
  }
  return {};
}

size_t PduParser::Feed(const uint8_t* data, size_t len) {
  size_t done = 0;
  while (done < len && state_ != State::kFailed) {
    std::span<uint8_t> dst = RecvBuffer();
    const size_t n = std::min(dst.size(), len - done);
    std::memcpy(dst.data(), data + done, n);
    done += n;
    if (!Commit(n)) break;
  }
  return done;
}

bool PduParser::Commit(size_t n) {
  if (state_ == State::kFailed) return false;
  if (state_ == State::kData && ddgst_) {
    data_crc_ = Crc32cExtend(data_crc_, data_dest_ + got_, n);
  }
  got_ += static_cast<uint32_t>(n);
  while (state_ != State::kFailed && got_ == want_) {
    switch (state_) {
      case State::kHeader:
        if (want_ == sizeof(CommonHeader)) {
          if (!OnCommonHeader()) return false;
        } else if (!OnFullHeader()) {
          return false;
        }
        break;
      case State::kPadding:
        if (!StartData()) return false;
        break;
      case State::kData:
        if (ddgst_) {
          state_ = State::kDataDigest;
          got_ = 0;
          want_ = kDigestSize;
        } else if (!FinishPdu()) {
          return false;
        }
        break;
      case State::kDataDigest:
        if (!FinishPdu()) return false;
        break;
      case State::kFailed:
        return false;
    }
  }
  return state_ != State::kFailed;
}

bool PduParser::OnCommonHeader() {
  current_ = PduHeader{};
  const auto& ch = *reinterpret_cast<const CommonHeader*>(header_);
  if (!AllowedType(options_.direction, ch.pdu_type)) {
    return Fail(Fes::kInvalidHeaderField, 0,
                absl::StrFormat("unexpected PDU type 0x%02x for this direction", ch.pdu_type));
  }
  const auto type = static_cast<PduType>(ch.pdu_type);
  const char* name = ToString(type);
  if (ch.hlen != HeaderLength(type)) {
    return Fail(Fes::kInvalidHeaderField, kOffHlen,
                absl::StrFormat("%s HLEN %u, expected %u", name, ch.hlen, HeaderLength(type)));
  }
  if (ch.flags & kFlagsReservedMask) {
    return Fail(Fes::kInvalidHeaderField, kOffFlags,
                absl::StrFormat("%s FLAGS 0x%02x has reserved bits set", name, ch.flags));
  }
  const bool hd = ch.flags & kFlagHdgst;
  const bool dd = ch.flags & kFlagDdgst;
  const bool want_hd = MayHaveHeaderDigest(type) && options_.header_digest;
  if (hd != want_hd) {
    return Fail(Fes::kInvalidHeaderField, kOffFlags,
                absl::StrFormat("%s HDGSTF is %d but header digest is %s", name, hd,
                                want_hd ? "enabled" : "not enabled"));
  }
  if ((ch.flags & (kFlagLastPdu | kFlagSuccess)) && !IsDataPdu(type)) {
    return Fail(Fes::kInvalidHeaderField, kOffFlags,
                absl::StrFormat("%s FLAGS 0x%02x: LAST_PDU/SUCCESS only exist on data PDUs", name,
                                ch.flags));
  }
  if (ch.flags & kFlagSuccess) {
    if (type != PduType::kC2HData || !(ch.flags & kFlagLastPdu)) {
      return Fail(Fes::kInvalidHeaderField, kOffFlags,
                  absl::StrFormat("%s SUCCESS flag without LAST_PDU", name));
    }
  }
  const uint32_t plen = ch.plen.get();
  const uint32_t hdr_end = ch.hlen + (hd ? kDigestSize : 0);
  const uint32_t dlen = dd ? kDigestSize : 0;
  uint32_t data_len = 0;
  switch (type) {
    case PduType::kIcReq:
    case PduType::kIcResp:
    case PduType::kCapsuleResp:
    case PduType::kR2T:
      if (dd) {
        return Fail(Fes::kInvalidHeaderField, kOffFlags,
                    absl::StrFormat("%s carries no data but DDGSTF is set", name));
      }
      if (ch.pdo != 0) {
        return Fail(Fes::kInvalidHeaderField, kOffPdo,
                    absl::StrFormat("%s PDO %u, expected 0", name, ch.pdo));
      }
      if (plen != hdr_end) {
        return Fail(Fes::kInvalidHeaderField, kOffPlen,
                    absl::StrFormat("%s PLEN %u, expected %u", name, plen, hdr_end));
      }
      break;
    case PduType::kH2CTermReq:
    case PduType::kC2HTermReq:
      if (dd) {
        return Fail(Fes::kInvalidHeaderField, kOffFlags,
                    absl::StrFormat("%s must not set DDGSTF", name));
      }
      if (ch.pdo != 0 && ch.pdo != ch.hlen) {
        return Fail(Fes::kInvalidHeaderField, kOffPdo,
                    absl::StrFormat("%s PDO %u, expected 0 or %u", name, ch.pdo, ch.hlen));
      }
      if (plen < ch.hlen || plen > ch.hlen + kTermReqMaxData) {
        return Fail(Fes::kInvalidHeaderField, kOffPlen,
                    absl::StrFormat("%s PLEN %u outside [%u, %u]", name, plen, ch.hlen,
                                    ch.hlen + kTermReqMaxData));
      }
      data_len = plen - ch.hlen;
      break;
    case PduType::kCapsuleCmd:
      if (plen == hdr_end && ch.pdo == 0 && !dd) break;  // no in-capsule data
      [[fallthrough]];
    case PduType::kH2CData:
    case PduType::kC2HData: {
      if (ch.pdo < hdr_end || ch.pdo % options_.data_alignment != 0) {
        return Fail(Fes::kInvalidHeaderField, kOffPdo,
                    absl::StrFormat("%s PDO %u: must be >= %u and a multiple of %u", name, ch.pdo,
                                    hdr_end, options_.data_alignment));
      }
      if (dd != options_.data_digest) {
        return Fail(Fes::kInvalidHeaderField, kOffFlags,
                    absl::StrFormat("%s DDGSTF is %d but data digest is %s", name, dd,
                                    options_.data_digest ? "enabled" : "not enabled"));
      }
      if (plen <= uint64_t{ch.pdo} + dlen) {
        return Fail(Fes::kInvalidHeaderField, kOffPlen,
                    absl::StrFormat("%s PLEN %u leaves no data after PDO %u", name, plen, ch.pdo));
      }
      data_len = plen - ch.pdo - dlen;
      if (data_len > options_.max_data) {
        return Fail(Fes::kR2TLimitExceeded, kOffPlen,
                    absl::StrFormat("%s carries %u data bytes, limit %u", name, data_len,
                                    options_.max_data));
      }
      break;
    }
  }
  hdgst_ = hd;
  ddgst_ = dd;
  current_.type = type;
  current_.flags = ch.flags;
  current_.hlen = ch.hlen;
  current_.pdo = ch.pdo;
  current_.plen = plen;
  current_.data_len = data_len;
  want_ = hdr_end;
  return true;
}

bool PduParser::OnFullHeader() {
  current_.bytes = header_;
  const char* name = ToString(current_.type);
  if (hdgst_) {
    const uint32_t expect = LoadLe32(header_ + current_.hlen);
    const uint32_t actual = Crc32c(header_, current_.hlen);
    if (expect != actual) {
      return Fail(Fes::kHeaderDigestError, 0,
                  absl::StrFormat("%s header digest mismatch: got 0x%08x, computed 0x%08x", name,
                                  expect, actual));
    }
  }
  if (IsDataPdu(current_.type)) {
    const uint32_t datal = LoadLe32(header_ + kOffDatal);
    if (datal == 0) {
      return Fail(Fes::kInvalidHeaderField, kOffDatal, absl::StrFormat("%s DATAL is 0", name));
    }
    if (datal != current_.data_len) {
      return Fail(Fes::kInvalidHeaderField, kOffPlen,
                  absl::StrFormat("%s PLEN %u does not match PDO %u + DATAL %u%s", name,
                                  current_.plen, current_.pdo, datal, ddgst_ ? " + DDGST" : ""));
    }
  }
  data_dest_ = nullptr;
  if (auto err = receiver_->OnPduHeader(current_, &data_dest_)) {
    return Fail(err->fes, err->fei, std::move(err->message));
  }
  if (current_.data_len == 0) return FinishPdu();
  if (IsTermReq(current_.type)) {
    data_dest_ = scratch_;
  } else if (data_dest_ == nullptr) {
    return Fail(Fes::kPduSequenceError, 0, absl::StrFormat("%s data has no destination", name));
  }
  const uint32_t pad = current_.pdo > 0 ? current_.pdo - (current_.hlen + (hdgst_ ? 4 : 0)) : 0;
  if (pad > 0) {
    state_ = State::kPadding;
    got_ = 0;
    want_ = pad;
    return true;
  }
  return StartData();
}

bool PduParser::StartData() {
  state_ = State::kData;
  got_ = 0;
  want_ = current_.data_len;
  data_crc_ = kCrc32cInit;
  return true;
}

bool PduParser::FinishPdu() {
  bool digest_ok = true;
  if (ddgst_ && current_.data_len > 0) {
    digest_ok = Crc32cFinish(data_crc_) == LoadLe32(digest_);
  }
  const PduHeader header = current_;
  state_ = State::kHeader;
  got_ = 0;
  want_ = sizeof(CommonHeader);
  current_.bytes = nullptr;
  if (auto err = receiver_->OnPduComplete(header, digest_ok,
                                          IsTermReq(header.type) ? scratch_ : nullptr)) {
    current_ = header;
    return Fail(err->fes, err->fei, std::move(err->message));
  }
  return true;
}

}  // namespace nvmf_ublk::tcp
