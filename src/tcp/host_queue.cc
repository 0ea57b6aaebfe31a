#include "tcp/host_queue.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "auth/dhchap_messages.h"
#include "base/log.h"
#include "nvme/status.h"
#include "tcp/crc32c.h"
#include "tcp/pdu_codec.h"

namespace nvmf_ublk::tcp {
namespace {

constexpr uint64_t kConnectCookie = ~uint64_t{0};
constexpr uint64_t kAuthCookie = ~uint64_t{1};

uint32_t BitsFor(uint32_t n) {  // bits needed to index n slots
  uint32_t bits = 0;
  while ((1u << bits) < n) ++bits;
  return bits;
}

}  // namespace

const char* HostQueue::ToString(State state) {
  switch (state) {
    case State::kIdle:
      return "idle";
    case State::kWaitIcResp:
      return "wait-icresp";
    case State::kConnecting:
      return "connecting";
    case State::kAuthenticating:
      return "authenticating";
    case State::kLive:
      return "live";
    case State::kFailed:
      return "failed";
  }
  return "?";
}

HostQueue::HostQueue(const HostQueueOptions& options, HostQueueObserver* observer)
    : options_(options),
      observer_(observer),
      parser_(PduParserOptions{StreamDirection::kControllerToHost, false, false,
                               PdaBytes(options.hpda), std::max(options.max_c2h_data, 8192u)},
              this) {
  NCHECK(options_.queue_size >= 2) << "queue_size " << options_.queue_size;
  options_.queue_size = std::min(options_.queue_size, kMaxQueueSize);
  options_.maxr2t = std::clamp<uint32_t>(options_.maxr2t, 1, kMaxR2t);
  if (options_.name.empty()) options_.name = absl::StrFormat("q%u", options_.qid);
  const uint32_t depth = options_.queue_size - 1u;
  slots_.resize(depth);
  free_.resize(depth);
  for (uint32_t i = 0; i < depth; ++i) free_[i] = static_cast<uint16_t>(i);
  free_count_ = depth;
  index_bits_ = BitsFor(depth);
  // Each slot has at most one capsule and one H2CData entry queued; plus ICReq and a TermReq.
  send_ring_.resize(2 * depth + 4);
}

HostQueue::~HostQueue() { auth::Wipe(auth_buf_); }

void HostQueue::SetState(State next) {
  if (next == state_) return;
  NLOG(DEBUG) << options_.name << ": " << ToString(state_) << " -> " << ToString(next);
  state_ = next;
}

absl::Status HostQueue::Start() {
  if (state_ != State::kIdle) return absl::FailedPreconditionError("queue already started");
  auto data =
      nvme::BuildConnectData(reinterpret_cast<const uint8_t(&)[16]>(*options_.hostid.data()),
                             options_.cntlid, options_.subnqn, options_.hostnqn);
  if (!data.ok()) return data.status();
  connect_data_ = *data;

  EncodeIcReq(icreq_, options_.hpda,
              (options_.header_digest ? kDgstHeader : 0) | (options_.data_digest ? kDgstData : 0),
              options_.maxr2t - 1);
  PushSend(SendEntry{icreq_, sizeof(IcReqPdu), nullptr, 0, nullptr, 0, SendKind::kRaw});
  SetState(State::kWaitIcResp);
  return absl::OkStatus();
}

bool HostQueue::CanSubmit() const {
  if (free_count_ == 0) return false;
  if (options_.disable_sq_flow_control) return true;
  return (sq_tail_ + 1) % options_.queue_size != sq_head_;
}

int HostQueue::Submit(const nvme::Sqe& sqe, void* data, uint32_t len, uint64_t cookie) {
  if (state_ != State::kLive) return -ENOTCONN;
  return SubmitInternal(sqe, data, len, cookie, false);
}

int HostQueue::SubmitInternal(const nvme::Sqe& sqe, void* data, uint32_t len, uint64_t cookie,
                              bool internal) {
  // Opcode bits 1:0 give the direction; some commands (Set Features) transfer data only for
  // some features, so a data-direction opcode with no buffer is allowed.
  const nvme::DataDirection dir = len == 0 ? nvme::DataDirection::kNone : nvme::DirectionOf(sqe);
  if ((len > 0 && (data == nullptr || nvme::DirectionOf(sqe) == nvme::DataDirection::kNone))) {
    return -EINVAL;
  }
  if (!CanSubmit()) return -EAGAIN;
  const uint16_t index = free_[free_head_];
  free_head_ = (free_head_ + 1) % free_.size();
  --free_count_;
  Slot& s = slots_[index];
  s.gen = static_cast<uint16_t>((s.gen + 1) & ((1u << (16 - index_bits_)) - 1));
  s.cid = static_cast<uint16_t>((uint32_t{s.gen} << index_bits_) | index);
  s.busy = true;
  s.internal = internal;
  s.allow_short = false;
  s.response = false;
  s.header_sent = false;
  s.capsule_sent = false;
  s.dir = dir;
  s.cookie = cookie;
  s.data = static_cast<uint8_t*>(data);
  s.len = len;
  s.received = 0;
  s.r2t_next = 0;
  s.r2t_count = 0;
  s.r2t_head = 0;
  s.r2t_queued = 0;
  s.h2c_sent = 0;
  s.h2c_last = false;
  s.h2c_queued = false;
  s.sends = 0;
  s.error = 0;
  // Connect too goes over R2T when its data exceeds the queue's in-capsule limit (an I/O queue
  // whose IOCCSZ is below 1024 + 64 bytes), as the target can only accept what it advertised.
  s.in_capsule = dir == nvme::DataDirection::kHostToController && len <= options_.in_capsule_data;

  nvme::Sqe cmd = sqe;
  cmd.cid.set(s.cid);
  cmd.flags = (cmd.flags & 0x3F) | nvme::kSqeFlagsPsdtSgl;
  std::memset(&cmd.dptr, 0, sizeof(cmd.dptr));
  cmd.dptr.length.set(len);
  cmd.dptr.sgl_id = s.in_capsule ? nvme::kSglIdInCapsule : nvme::kSglIdTransport;
  const uint32_t in_capsule_len = s.in_capsule ? len : 0;
  const uint32_t hdr_len = EncodeCapsuleCmd(s.capsule, cmd, in_capsule_len, wire_);
  const bool dd = wire_.data_digest && in_capsule_len > 0;
  if (dd) StoreLe32(s.capsule_ddgst, Crc32c(data, len));

  ++outstanding_;
  sq_tail_ = (sq_tail_ + 1) % options_.queue_size;
  ++s.sends;
  PushSend(SendEntry{s.capsule, hdr_len, in_capsule_len ? s.data : nullptr, in_capsule_len,
                     dd ? s.capsule_ddgst : nullptr, index, SendKind::kCapsule});
  return s.cid;
}

void HostQueue::PushSend(const SendEntry& e) {
  NCHECK(send_count_ < send_ring_.size()) << "send ring overflow";
  send_ring_[(send_head_ + send_count_) % send_ring_.size()] = e;
  ++send_count_;
}

int HostQueue::PendingSend(iovec* iov, int max) const {
  int n = 0;
  uint32_t skip = head_sent_;
  for (uint32_t i = 0; i < send_count_ && n < max; ++i) {
    const SendEntry& e = send_ring_[(send_head_ + i) % send_ring_.size()];
    const struct {
      const uint8_t* p;
      uint32_t len;
    } parts[3] = {{e.hdr, e.hdr_len}, {e.data, e.data_len}, {e.ddgst, e.ddgst ? 4u : 0u}};
    for (const auto& part : parts) {
      if (part.len == 0) continue;
      if (skip >= part.len) {
        skip -= part.len;
        continue;
      }
      if (n == max) break;
      iov[n].iov_base = const_cast<uint8_t*>(part.p + skip);
      iov[n].iov_len = part.len - skip;
      ++n;
      skip = 0;
    }
  }
  return n;
}

size_t HostQueue::PendingSendBytes() const {
  size_t total = 0;
  for (uint32_t i = 0; i < send_count_; ++i) {
    total += send_ring_[(send_head_ + i) % send_ring_.size()].total();
  }
  return total - head_sent_;
}

void HostQueue::SendComplete(size_t bytes) {
  while (bytes > 0 && send_count_ > 0) {
    const SendEntry e = send_ring_[send_head_];
    const uint32_t left = e.total() - head_sent_;
    if (bytes < left) {
      head_sent_ += static_cast<uint32_t>(bytes);
      if (e.kind == SendKind::kCapsule && head_sent_ >= e.hdr_len) {
        slots_[e.slot].header_sent = true;
      }
      return;
    }
    bytes -= left;
    head_sent_ = 0;
    send_head_ = (send_head_ + 1) % send_ring_.size();
    --send_count_;
    OnEntrySent(e);
  }
  NCHECK(bytes == 0 || state_ == State::kFailed) << "SendComplete beyond pending bytes";
}

void HostQueue::OnEntrySent(const SendEntry& e) {
  if (e.kind == SendKind::kRaw) return;
  Slot& s = slots_[e.slot];
  --s.sends;
  if (e.kind == SendKind::kCapsule) s.header_sent = s.capsule_sent = true;
  if (e.kind == SendKind::kH2C) {
    s.h2c_queued = false;
    if (s.h2c_last) {  // every byte of the oldest R2T is written: it no longer counts
      s.h2c_last = false;
      s.r2t_head = (s.r2t_head + 1) % kMaxR2t;
      --s.r2t_count;
      --s.r2t_queued;
    }
    QueueNextH2C(e.slot);
  }
  CompleteIfDone(e.slot);
}

void HostQueue::QueueNextH2C(uint16_t index) {
  Slot& s = slots_[index];
  // A command already answered (with an error) gets no more data.
  if (s.h2c_queued || s.response || s.r2t_queued == s.r2t_count || state_ == State::kFailed) {
    return;
  }
  R2tRange& r = s.r2ts[(s.r2t_head + s.r2t_queued) % kMaxR2t];
  const uint32_t chunk = std::min(negotiated_.maxh2cdata, r.length - s.h2c_sent);
  const uint32_t datao = r.offset + s.h2c_sent;
  s.h2c_sent += chunk;
  const bool last = s.h2c_sent == r.length;
  const uint16_t ttag = r.ttag;
  if (last) {
    ++s.r2t_queued;
    s.h2c_sent = 0;
  }
  s.h2c_last = last;
  const uint32_t hdr_len = EncodeDataPdu(s.h2c, PduType::kH2CData, last ? kFlagLastPdu : 0, s.cid,
                                         ttag, datao, chunk, wire_);
  const bool dd = wire_.data_digest;
  if (dd) StoreLe32(s.h2c_ddgst, Crc32c(s.data + datao, chunk));
  s.h2c_queued = true;
  ++s.sends;
  PushSend(SendEntry{s.h2c, hdr_len, s.data + datao, chunk, dd ? s.h2c_ddgst : nullptr, index,
                     SendKind::kH2C});
}

HostQueue::Slot* HostQueue::LookupCid(uint16_t cid) {
  const uint32_t index = cid & ((1u << index_bits_) - 1);
  if (index >= slots_.size()) return nullptr;
  Slot& s = slots_[index];
  if (!s.busy || s.cid != cid || s.response) return nullptr;
  return &s;
}

std::optional<PduError> HostQueue::CheckCid(uint16_t cid, const char* what, uint32_t fei,
                                            Slot** out) {
  Slot* s = LookupCid(cid);
  if (s == nullptr) {
    return PduError{Fes::kInvalidHeaderField, fei,
                    absl::StrFormat("%s for unknown or completed command ID 0x%04x", what, cid)};
  }
  if (!s->header_sent) {
    // The controller cannot know a CID it has not received: a guess or a stale use, never a
    // completion of the command now in this slot.
    return PduError{Fes::kInvalidHeaderField, fei,
                    absl::StrFormat("%s for command ID 0x%04x (%s) before its capsule was sent",
                                    what, cid, NameOf(*s))};
  }
  *out = s;
  return std::nullopt;
}

std::optional<PduError> HostQueue::CheckSuccessAllowed(const Slot& s, const char* what,
                                                       uint32_t fei) {
  std::string missing;
  if (s.dir == nvme::DataDirection::kHostToController) {
    if (s.in_capsule) {
      if (!s.capsule_sent) missing = "its in-capsule data was sent";
    } else if (s.r2t_next != s.len) {
      missing =
          absl::StrFormat("it asked for all data (R2Ts cover %u of %u bytes)", s.r2t_next, s.len);
    } else if (s.r2t_count > 0) {
      missing = "all data it asked for was sent";
    }
  } else if (s.dir == nvme::DataDirection::kControllerToHost && s.received != s.len &&
             !s.allow_short) {
    missing = absl::StrFormat("it sent all data (%u of %u bytes)", s.received, s.len);
  }
  if (missing.empty()) return std::nullopt;
  return PduError{Fes::kPduSequenceError, fei,
                  absl::StrFormat("%s: successful completion of %s (CID 0x%04x) before %s", what,
                                  NameOf(s), s.cid, missing)};
}

const char* HostQueue::NameOf(const Slot& s) const {
  return nvme::CommandName(s.sqe(), options_.qid == 0);
}

void HostQueue::Feed(const uint8_t* data, size_t len) {
  if (state_ == State::kFailed) return;
  parser_.Feed(data, len);
  AfterParse();
}

void HostQueue::Commit(size_t n) {
  if (state_ == State::kFailed) return;
  parser_.Commit(n);
  AfterParse();
}

void HostQueue::AfterParse() {
  if (parser_.failed() && state_ != State::kFailed) FailWithTermReq(parser_.error());
}

std::optional<PduError> HostQueue::OnPduHeader(const PduHeader& h, uint8_t** data_dest) {
  const bool want_icresp = state_ == State::kWaitIcResp;
  if (h.type == PduType::kC2HTermReq) return std::nullopt;
  if (state_ == State::kIdle || state_ == State::kFailed) {
    return PduError{
        Fes::kPduSequenceError, 0,
        absl::StrFormat("%s received in state %s", tcp::ToString(h.type), ToString(state_))};
  }
  if ((h.type == PduType::kIcResp) != want_icresp) {
    return PduError{Fes::kPduSequenceError, 0,
                    absl::StrFormat("%s received while %s", tcp::ToString(h.type),
                                    want_icresp ? "waiting for ICResp" : "connected")};
  }
  if (h.type != PduType::kC2HData) return std::nullopt;

  const auto& pdu = h.as<DataPdu>();
  const uint16_t cid = pdu.cccid.get();
  Slot* s = nullptr;
  if (auto err = CheckCid(cid, "C2HData", offsetof(DataPdu, cccid), &s)) return err;
  if (s->dir != nvme::DataDirection::kControllerToHost) {
    return PduError{
        Fes::kPduSequenceError, 0,
        absl::StrFormat("C2HData for %s (CID 0x%04x), which reads no data", NameOf(*s), cid)};
  }
  const uint32_t datao = pdu.datao.get(), datal = pdu.datal.get();
  if (uint64_t{datao} + datal > s->len) {
    return PduError{Fes::kDataOutOfRange, offsetof(DataPdu, datao),
                    absl::StrFormat("C2HData DATAO %u + DATAL %u beyond the %u-byte buffer of %s",
                                    datao, datal, s->len, NameOf(*s))};
  }
  if (datao != s->received) {
    return PduError{
        Fes::kPduSequenceError, offsetof(DataPdu, datao),
        absl::StrFormat("C2HData DATAO %u, expected %u (data out of order)", datao, s->received)};
  }
  // SUCCESS on a queue with SQ flow control: the spec ties it to flow control disabled, but
  // SPDK's target sends it on every queue, and the Linux host accepts it; so do we (the SQ head
  // is then bounded by the commands outstanding, below).
  if ((h.flags & kFlagSuccess) && datao + datal != s->len) {
    return PduError{
        Fes::kDataOutOfRange, offsetof(DataPdu, datal),
        absl::StrFormat("C2HData with SUCCESS ends at %u of %u bytes", datao + datal, s->len)};
  }
  *data_dest = s->data + datao;
  return std::nullopt;
}

std::optional<PduError> HostQueue::OnPduComplete(const PduHeader& h, bool data_digest_ok,
                                                 const uint8_t* term_data) {
  switch (h.type) {
    case PduType::kIcResp:
      return OnIcResp(h.as<IcRespPdu>());
    case PduType::kCapsuleResp:
      return OnCapsuleResp(h.as<CapsuleRespPdu>());
    case PduType::kR2T:
      return OnR2T(h.as<R2TPdu>());
    case PduType::kC2HData: {
      const auto& pdu = h.as<DataPdu>();
      Slot* s = LookupCid(pdu.cccid.get());
      if (s == nullptr) return std::nullopt;  // cannot happen: checked in OnPduHeader
      s->received += pdu.datal.get();
      if (!data_digest_ok) {
        NLOG(WARNING) << options_.name << ": data digest error in C2HData for CID " << s->cid;
        s->error = -EBADMSG;
      }
      if (h.flags & kFlagSuccess) {
        if (!success_seen_) {
          success_seen_ = true;
          NLOG(INFO)
              << options_.name
              << (options_.disable_sq_flow_control
                      ? ": SQ flow control disabled: reads complete in C2HData (SUCCESS flag)"
                      : ": the controller completes reads in C2HData (SUCCESS flag) with SQ "
                        "flow control on (as SPDK's target does): accepted");
        }
        s->cqe = nvme::Cqe{};
        s->cqe.cid.set(s->cid);
        s->cqe.sq_id.set(options_.qid);
        s->response = true;
        --outstanding_;
        // No SQHD here: the entries the controller has not fetched yet are at most the commands
        // still outstanding.
        if (!options_.disable_sq_flow_control) {
          sq_head_ = (sq_tail_ + options_.queue_size - outstanding_) % options_.queue_size;
        }
        if (outstanding_ == 0) sq_head_ = sq_tail_;
        CompleteIfDone(static_cast<uint16_t>(&*s - slots_.data()));
      }
      return std::nullopt;
    }
    case PduType::kC2HTermReq: {
      const auto& t = h.as<TermReqPdu>();
      const auto fes = static_cast<Fes>(t.fes.get());
      peer_terminated_ = true;
      (void)term_data;
      return PduError{fes, t.fei.get(),
                      absl::StrFormat("controller terminated the connection (C2HTermReq): FES "
                                      "0x%02x %s, FEI 0x%x",
                                      t.fes.get(), tcp::ToString(fes), t.fei.get())};
    }
    default:
      return PduError{Fes::kPduSequenceError, 0, "unexpected PDU"};
  }
}

std::optional<PduError> HostQueue::OnIcResp(const IcRespPdu& resp) {
  if (resp.pfv.get() != kPfv10) {
    return PduError{Fes::kUnsupportedParameter, offsetof(IcRespPdu, pfv),
                    absl::StrFormat("ICResp PFV %u is not supported (need 0)", resp.pfv.get())};
  }
  if (resp.cpda > kMaxPda) {
    return PduError{Fes::kUnsupportedParameter, offsetof(IcRespPdu, cpda),
                    absl::StrFormat("ICResp CPDA %u is out of range (0..31)", resp.cpda)};
  }
  const bool hd = resp.dgst & kDgstHeader, dd = resp.dgst & kDgstData;
  if ((resp.dgst & ~(kDgstHeader | kDgstData)) || hd != options_.header_digest ||
      dd != options_.data_digest) {
    return PduError{
        Fes::kUnsupportedParameter, offsetof(IcRespPdu, dgst),
        absl::StrFormat("ICResp digests: header %s, data %s; requested header %s, data %s",
                        hd ? "on" : "off", dd ? "on" : "off", options_.header_digest ? "on" : "off",
                        options_.data_digest ? "on" : "off")};
  }
  const uint32_t maxh2c = resp.maxh2cdata.get();
  if (maxh2c < kMinMaxH2CData || maxh2c % 4 != 0) {
    return PduError{
        Fes::kUnsupportedParameter, offsetof(IcRespPdu, maxh2cdata),
        absl::StrFormat("ICResp MAXH2CDATA %u: must be >= 4096 and a multiple of 4", maxh2c)};
  }
  negotiated_ = Negotiated{hd, dd, PdaBytes(resp.cpda), maxh2c};
  wire_ = WireFormat{hd, dd, negotiated_.cpda_bytes};
  PduParserOptions popts = parser_.options();
  popts.header_digest = hd;
  popts.data_digest = dd;
  parser_.Reconfigure(popts);
  SetState(State::kConnecting);
  const uint8_t cattr =
      options_.disable_sq_flow_control ? nvme::kConnectAttrDisableSqFlowControl : 0;
  const nvme::Sqe connect = nvme::BuildConnect(options_.qid, options_.queue_size,
                                               options_.qid == 0 ? options_.kato_ms : 0, cattr);
  const int rc =
      SubmitInternal(connect, &connect_data_, sizeof(connect_data_), kConnectCookie, true);
  NCHECK(rc >= 0) << "Connect submission failed: " << rc;
  return std::nullopt;
}

std::optional<PduError> HostQueue::OnCapsuleResp(const CapsuleRespPdu& resp) {
  const nvme::Cqe& cqe = resp.cqe;
  const uint16_t cid = cqe.cid.get();
  constexpr uint32_t kCidFei = offsetof(CapsuleRespPdu, cqe) + offsetof(nvme::Cqe, cid);
  Slot* s = nullptr;
  if (auto err = CheckCid(cid, "CapsuleResp", kCidFei, &s)) return err;
  const nvme::CompletionStatus status{static_cast<uint16_t>(cqe.status.get() >> 1)};
  if (status.ok() && s->error == 0) {
    if (auto err = CheckSuccessAllowed(*s, "CapsuleResp", kCidFei)) return err;
  }
  const uint16_t sqhd = cqe.sq_head.get();
  if (sqhd < options_.queue_size) sq_head_ = sqhd;  // 0xFFFF when flow control is disabled
  --outstanding_;
  if (outstanding_ == 0) sq_head_ = sq_tail_;
  s->cqe = cqe;
  s->response = true;
  const uint16_t index = static_cast<uint16_t>(s - slots_.data());
  CompleteIfDone(index);
  return std::nullopt;
}

std::optional<PduError> HostQueue::OnR2T(const R2TPdu& r2t) {
  const uint16_t cid = r2t.cccid.get();
  Slot* s = nullptr;
  if (auto err = CheckCid(cid, "R2T", offsetof(R2TPdu, cccid), &s)) return err;
  if (s->dir != nvme::DataDirection::kHostToController || s->in_capsule) {
    return PduError{
        Fes::kPduSequenceError, 0,
        absl::StrFormat("R2T for %s (CID 0x%04x), which has no data to send", NameOf(*s), cid)};
  }
  const uint32_t r2to = r2t.r2to.get(), r2tl = r2t.r2tl.get();
  if (r2tl == 0) {
    return PduError{Fes::kInvalidHeaderField, offsetof(R2TPdu, r2tl), "R2T R2TL is 0"};
  }
  if (uint64_t{r2to} + r2tl > s->len) {
    return PduError{
        Fes::kDataOutOfRange, offsetof(R2TPdu, r2to),
        absl::StrFormat("R2T R2TO %u + R2TL %u beyond the %u-byte write", r2to, r2tl, s->len)};
  }
  if (r2to != s->r2t_next) {
    return PduError{Fes::kPduSequenceError, offsetof(R2TPdu, r2to),
                    absl::StrFormat("R2T R2TO %u, expected %u", r2to, s->r2t_next)};
  }
  for (uint32_t i = 0; i < s->r2t_count; ++i) {
    if (s->r2ts[(s->r2t_head + i) % kMaxR2t].ttag == r2t.ttag.get()) {
      return PduError{Fes::kInvalidHeaderField, offsetof(R2TPdu, ttag),
                      absl::StrFormat("R2T TTAG 0x%04x reused while its earlier R2T for CID "
                                      "0x%04x is outstanding",
                                      r2t.ttag.get(), cid)};
    }
  }
  if (s->r2t_count >= options_.maxr2t) {
    return PduError{Fes::kR2TLimitExceeded, 0,
                    absl::StrFormat("more than MAXR2T+1 = %u R2Ts outstanding for CID 0x%04x",
                                    options_.maxr2t, cid)};
  }
  s->r2ts[(s->r2t_head + s->r2t_count) % kMaxR2t] = R2tRange{r2t.ttag.get(), r2to, r2tl};
  ++s->r2t_count;
  s->r2t_next += r2tl;
  QueueNextH2C(static_cast<uint16_t>(s - slots_.data()));
  return std::nullopt;
}

void HostQueue::CompleteIfDone(uint16_t index) {
  Slot& s = slots_[index];
  if (!s.busy || !s.response || s.sends > 0) return;
  Finish(index);
}

void HostQueue::Finish(uint16_t index) {
  Slot& s = slots_[index];
  const uint64_t cookie = s.cookie;
  const nvme::Cqe cqe = s.cqe;
  const int error = s.error;
  const bool internal = s.internal;
  const uint32_t received = s.received;
  s.busy = false;
  s.data = nullptr;
  free_[(free_head_ + free_count_) % free_.size()] = index;
  ++free_count_;
  if (internal) {
    if (error != 0) return;  // the queue is failing; OnQueueFailed tells the owner
    if (state_ == State::kConnecting && cookie == kConnectCookie) OnConnectDone(cqe);
    if (state_ == State::kAuthenticating && cookie == kAuthCookie) OnAuthCommandDone(cqe, received);
    return;
  }
  observer_->OnCommandDone(cookie, cqe, error);
}

void HostQueue::OnConnectDone(const nvme::Cqe& cqe) {
  const nvme::CompletionStatus status{static_cast<uint16_t>(cqe.status.get() >> 1)};
  if (!status.ok()) {
    // Connect Invalid Parameters names the culprit in DW0 (NVMe-oF 1.1 Figure 24): bits 31:16 set
    // = a Connect data field (IATTR), bits 15:0 = its byte offset (IPO).
    const uint32_t dw0 = cqe.dw0.get();
    const char* hint = nullptr;
    if (status.sct() == nvme::kSctCommandSpecific &&
        status.sc() == nvme::kScConnectInvalidParameters && (dw0 >> 16) != 0) {
      switch (dw0 & 0xFFFF) {
        case offsetof(nvme::ConnectData, subnqn):
          hint = "the target has no subsystem with this NQN (or does not offer it to this host)";
          break;
        case offsetof(nvme::ConnectData, hostnqn):
          hint = "the target rejects this host NQN";
          break;
        case offsetof(nvme::ConnectData, cntlid):
          hint = "the target rejects the controller ID";
          break;
        case offsetof(nvme::ConnectData, hostid):
          hint = "the target rejects this host ID";
          break;
      }
    }
    const std::string what = hint ? absl::StrCat("Connect (", hint, ")") : "Connect";
    absl::Status s = nvme::ToStatus(status, what.c_str());  // keeps the NVMe status payload
    Fail(s);
    return;
  }
  const nvme::ConnectResult result = nvme::ParseConnectResult(cqe);
  cntlid_ = options_.qid == 0 ? result.cntlid : options_.cntlid;
  if (result.authreq != 0) {
    if (!options_.dhchap) {
      Fail(absl::UnauthenticatedError(
          "the controller requires in-band authentication (DH-HMAC-CHAP): give the host's "
          "secret with --dhchap-secret (DHHC-1:...)"));
      return;
    }
    dhchap_ = std::make_unique<auth::DhchapHost>(options_.dhchap, options_.hostnqn, options_.subnqn,
                                                 options_.auth_transaction);
    SetState(State::kAuthenticating);
    AuthNext();
    return;
  }
  if (options_.dhchap && options_.dhchap->ctrl_key) {
    Fail(absl::UnauthenticatedError(
        "--dhchap-ctrl-secret was given, but the controller did not ask for authentication, so "
        "it cannot be authenticated (is DH-HMAC-CHAP configured for this host on the target?)"));
    return;
  }
  SetState(State::kLive);
  observer_->OnQueueLive(cntlid_);
}

void HostQueue::AuthNext() {
  using Step = auth::DhchapHost::Step;
  auth::DhchapHost& d = *dhchap_;
  if (d.step() == Step::kDone) {
    std::string what = absl::StrCat("authenticated (DH-HMAC-CHAP, ", auth::ToString(d.hash()), ", ",
                                    auth::ToString(d.dhgroup()),
                                    d.bidirectional() ? ", controller authenticated too)" : ")");
    if (options_.qid == 0) {
      NLOG(INFO) << options_.name << ": " << what;
    } else {
      NLOG(DEBUG) << options_.name << ": " << what;
    }
    dhchap_.reset();
    auth::Wipe(auth_buf_);
    SetState(State::kLive);
    observer_->OnQueueLive(cntlid_);
    return;
  }
  if (d.step() == Step::kFailed) {
    absl::Status why = d.result();
    dhchap_.reset();
    auth::Wipe(auth_buf_);
    Fail(why);
    return;
  }
  nvme::Sqe sqe;
  auth_sending_ = d.sending();
  auth::Wipe(auth_buf_);  // the previous message (a challenge, a reply) is not kept
  if (auth_sending_) {
    auth_buf_ = d.outgoing();
    sqe = nvme::BuildAuthSend(auth::kSecpAuth, 1, 1, static_cast<uint32_t>(auth_buf_.size()));
  } else {
    auth_buf_.assign(auth::DhchapHost::kReceiveSize, 0);
    sqe = nvme::BuildAuthReceive(auth::kSecpAuth, 1, 1, auth::DhchapHost::kReceiveSize);
  }
  const int rc = SubmitInternal(sqe, auth_buf_.data(), static_cast<uint32_t>(auth_buf_.size()),
                                kAuthCookie, true);
  if (rc < 0) {
    Fail(absl::InternalError(absl::StrCat("authentication command not submitted: ", rc)));
    return;
  }
  // The controller may return less than the allocation length (the message's own length).
  if (!auth_sending_)
    slots_[static_cast<uint16_t>(rc) & ((1u << index_bits_) - 1)].allow_short = true;
}

void HostQueue::OnAuthCommandDone(const nvme::Cqe& cqe, uint32_t received) {
  const nvme::CompletionStatus status{static_cast<uint16_t>(cqe.status.get() >> 1)};
  if (!status.ok()) {
    dhchap_->OnCommandFailed(
        nvme::ToStatus(status, auth_sending_ ? "Authentication Send" : "Authentication Receive"));
  } else if (auth_sending_) {
    dhchap_->OnSent();
  } else {
    dhchap_->OnReceived(std::span<const uint8_t>(auth_buf_.data(), received));
  }
  AuthNext();
}

void HostQueue::FailWithTermReq(const PduError& err) {
  if (!peer_terminated_) {
    // H2CTermReq (§3.6.2.3): FES, FEI and the offending PDU header, so the controller can log it.
    // It goes out through BeginTermination(), ahead of everything still unsent.
    term_len_ =
        EncodeTermReq(term_, PduType::kH2CTermReq, err.fes, err.fei, parser_.offending_header());
  }
  Fail(absl::DataLossError(
      peer_terminated_
          ? err.message
          : absl::StrFormat("protocol error from controller: %s (FES 0x%02x %s, field offset %u)",
                            err.message, static_cast<int>(err.fes), tcp::ToString(err.fes),
                            err.fei)));
}

void HostQueue::Fail(const absl::Status& status) {
  if (state_ == State::kFailed && fail_notified_) return;
  SetState(State::kFailed);
  fail_notified_ = true;
  if (status.code() == absl::StatusCode::kCancelled) {
    NLOG(DEBUG) << options_.name << ": queue closed: " << status;
  } else {
    NLOG(WARNING) << options_.name << ": queue failed: " << status;
  }
  observer_->OnQueueFailed(status);
}

bool HostQueue::BeginTermination() {
  if (term_len_ == 0) return false;
  if (!term_queued_) {
    term_queued_ = true;
    // Keep only a partly written head entry: its remaining bytes must precede the TermReq.
    send_count_ = (send_count_ > 0 && head_sent_ > 0) ? 1 : 0;
    if (send_count_ == 0) head_sent_ = 0;
    PushSend(SendEntry{term_, term_len_, nullptr, 0, nullptr, 0, SendKind::kRaw});
  }
  return send_count_ > 0;
}

void HostQueue::FailOutstanding(int error) {
  // The connection is gone: every pending byte is moot.
  send_head_ = send_count_ = head_sent_ = 0;
  for (uint16_t i = 0; i < static_cast<uint16_t>(slots_.size()); ++i) {
    Slot& s = slots_[i];
    if (!s.busy) continue;
    s.sends = 0;
    if (!s.response) {
      s.response = true;
      s.cqe = nvme::Cqe{};
      s.cqe.cid.set(s.cid);
      s.cqe.sq_id.set(options_.qid);
      s.error = error;
    }
    Finish(i);
  }
  outstanding_ = 0;
  sq_head_ = sq_tail_;
}

}  // namespace nvmf_ublk::tcp
