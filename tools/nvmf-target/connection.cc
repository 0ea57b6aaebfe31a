// Transport side of a target connection: the thread loop, ICReq/ICResp, capsules, R2T/H2CData,
// C2HData, held responses and fault injection. Command semantics are in admin_commands.cc and
// io_commands.cc.
#include "connection.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_format.h"
#include "base/clock.h"
#include "base/log.h"
#include "controller.h"
#include "internal.h"
#include "target.h"

namespace nvmf_ublk::target {
namespace {

constexpr int64_t kNanosPerMs = 1'000'000;

std::optional<tcp::PduError> StopParsing() {
  // Returned from a receiver callback once the connection is closing: stops the parser without a
  // C2HTermReq (ReceiveSome checks the state first).
  return tcp::PduError{tcp::Fes::kPduSequenceError, 0, "connection closing"};
}

}  // namespace

const char* Connection::ToString(State state) {
  switch (state) {
    case State::kWaitIcReq:
      return "wait-icreq";
    case State::kWaitConnect:
      return "wait-connect";
    case State::kLive:
      return "live";
    case State::kClosing:
      return "closing";
  }
  return "?";
}

Connection::Connection(Target* target, size_t port_index, UniqueFd sock, std::string local_addr,
                       uint8_t local_adrfam, std::string peer)
    : target_(target),
      port_index_(port_index),
      sock_(std::move(sock)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      local_addr_(std::move(local_addr)),
      local_adrfam_(local_adrfam),
      peer_(std::move(peer)),
      name_(peer_),
      parser_(tcp::PduParserOptions{tcp::StreamDirection::kHostToController, false, false, 4,
                                    kAdminInCapsuleMax},
              this) {
  NCHECK(wake_fd_.valid()) << "eventfd: " << strerror(errno);
}

Connection::~Connection() { Join(); }

void Connection::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Connection::Join() {
  if (thread_.joinable()) thread_.join();
}

void Connection::Shutdown() {
  shutdown_ = true;
  ::shutdown(sock_.get(), SHUT_RDWR);
  const uint64_t one = 1;
  (void)!write(wake_fd_.get(), &one, sizeof(one));
}

void Connection::PostEvent(const nvme::AsyncEvent& event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const nvme::AsyncEvent& e : events_) {
      if (e.type == event.type && e.info == event.info && e.log_page == event.log_page) return;
    }
    events_.push_back(event);
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_.get(), &one, sizeof(one));
}

bool Connection::AbortHeld(uint16_t cid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(held_.begin(), held_.end(),
                           [cid](const Held& h) { return h.cid == cid && h.deadline_ns != 0; });
    if (it == held_.end()) return false;
    nvme::Cqe cqe = it->cqe;
    cqe.dw0.set(0);
    cqe.dw1.set(0);
    cqe.status.set(
        static_cast<uint16_t>(nvme::MakeStatus(nvme::kSctGeneric, nvme::kScAbortRequested) << 1));
    it->bytes.clear();
    EncodeCapsuleResp(cqe, &it->bytes);
    it->deadline_ns = 0;  // due now, and marks it aborted
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_.get(), &one, sizeof(one));
  return true;
}

void Connection::SetState(State next) {
  if (next == state_) return;
  NLOG(DEBUG) << name_ << ": " << ToString(state_) << " -> " << ToString(next);
  state_ = next;
}

void Connection::Close(const std::string& why) {
  if (state_ == State::kClosing) return;
  NLOG(INFO) << name_ << ": closing: " << why;
  SetState(State::kClosing);
}

void Connection::Run() {
  NLOG(DEBUG) << name_ << ": accepted";
  std::vector<uint8_t> buf(64 * 1024);
  while (state_ != State::kClosing && (!send_failed_ || stalled_)) {
    pollfd fds[2] = {{sock_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    const int rc = poll(fds, 2, PollTimeoutMs());
    if (rc < 0) {
      if (errno == EINTR) continue;
      Close(absl::StrFormat("poll: %s", strerror(errno)));
      break;
    }
    if (shutdown_.load()) {
      // The controller is going away (its admin queue closed first): what the host sent before
      // that, an H2CTermReq above all, is still read and counted.
      DrainInput(buf);
      Close("shut down by the target");
      break;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      (void)!read(wake_fd_.get(), &v, sizeof(v));
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && !ReceiveSome(buf)) break;
    DeliverEvents();
    SendDueHeld();
    CheckKeepAlive();
    FlushOutput();
  }
  FlushOutput();  // responses produced before the close (Disconnect, C2HTermReq) still go out
  // The host stopped reading (it may be tearing the connection down after a protocol error):
  // whatever it sent before that, its H2CTermReq above all, is still in the socket.
  if (send_failed_ && state_ != State::kClosing) DrainInput(buf);
  Cleanup();
  done_ = true;
}

void Connection::DrainInput(std::vector<uint8_t>& buf) {
  const int flags = fcntl(sock_.get(), F_GETFL);
  fcntl(sock_.get(), F_SETFL, flags | O_NONBLOCK);
  draining_ = true;
  while (state_ != State::kClosing && ReceiveSome(buf)) {
  }
  draining_ = false;
}

bool Connection::ReceiveSome(std::vector<uint8_t>& buf) {
  // Large data (write payloads) is received straight into its buffer; headers go through `buf` so
  // one recv() can carry many small PDUs.
  const std::span<uint8_t> direct = parser_.RecvBuffer();
  const bool zero_copy = direct.size() >= 4096;
  uint8_t* dst = zero_copy ? direct.data() : buf.data();
  const size_t cap = zero_copy ? direct.size() : buf.size();
  ssize_t n;
  do {
    n = recv(sock_.get(), dst, cap, 0);
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    Close(shutdown_.load() ? "shut down by the target" : "host closed the connection");
    return false;
  }
  if (n < 0) {
    if (draining_ && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    Close(absl::StrFormat("recv: %s", strerror(errno)));
    return false;
  }
  if (zero_copy) {
    parser_.Commit(static_cast<size_t>(n));
  } else {
    parser_.Feed(buf.data(), static_cast<size_t>(n));
  }
  if (state_ == State::kClosing) return false;
  if (parser_.failed()) {
    const tcp::PduError& e = parser_.error();
    TerminateConnection(e.fes, e.fei, parser_.offending_header(), e.message);
    return false;
  }
  return true;
}

void Connection::TerminateConnection(tcp::Fes fes, uint32_t fei, std::span<const uint8_t> offending,
                                     const std::string& why) {
  NLOG(WARNING) << name_ << ": " << why << ": sending C2HTermReq (FES 0x"
                << absl::StrFormat("%02x", static_cast<int>(fes)) << " " << tcp::ToString(fes)
                << ", FEI " << fei << ")";
  uint8_t hdr[tcp::kMaxHeaderBytes];
  const uint32_t n = tcp::EncodeTermReq(hdr, tcp::PduType::kC2HTermReq, fes, fei, offending);
  out_.insert(out_.end(), hdr, hdr + n);
  target_->stats_.term_reqs++;
  Close(why);
}

bool Connection::SendAll(const uint8_t* data, size_t len) {
  while (len > 0 && !send_failed_) {
    const ssize_t n = send(sock_.get(), data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      NLOG(DEBUG) << name_ << ": send: " << strerror(errno);
      send_failed_ = true;
      break;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return !send_failed_;
}

void Connection::FlushOutput() {
  if (send_failed_) out_.clear();
  if (out_.empty()) return;
  // Malice (stall): what was queued up to the stall point goes out, then silence from now on
  // while the socket stays open.
  SendAll(out_.data(), stalled_ ? std::min(out_.size(), stall_at_) : out_.size());
  out_.clear();
  if (stalled_) send_failed_ = true;
}

int Connection::PollTimeoutMs() {
  int64_t deadline = INT64_MAX;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Held& h : held_) deadline = std::min(deadline, h.deadline_ns);
  }
  if (qid_ == 0 && ctrl_ && state_ == State::kLive) {
    const uint32_t kato = ctrl_->kato_ms.load();
    if (kato > 0) deadline = std::min(deadline, LastKeepAliveNs() + int64_t{kato} * kNanosPerMs);
  }
  if (deadline == INT64_MAX) return -1;
  const int64_t wait = deadline - MonotonicNanos();
  if (wait <= 0) return 0;
  return static_cast<int>(std::min<int64_t>((wait + kNanosPerMs - 1) / kNanosPerMs, INT_MAX));
}

void Connection::SendDueHeld() {
  std::vector<Held> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (held_.empty()) return;
    const int64_t now = MonotonicNanos();
    auto it = std::stable_partition(held_.begin(), held_.end(),
                                    [now](const Held& h) { return h.deadline_ns > now; });
    due.assign(std::make_move_iterator(it), std::make_move_iterator(held_.end()));
    held_.erase(it, held_.end());
  }
  std::stable_sort(due.begin(), due.end(),
                   [](const Held& a, const Held& b) { return a.deadline_ns < b.deadline_ns; });
  for (Held& h : due) {
    out_.insert(out_.end(), h.bytes.begin(), h.bytes.end());
    active_cids_.erase(h.cid);
  }
}

void Connection::DeliverEvents() {
  if (aer_cids_.empty()) return;
  std::vector<nvme::AsyncEvent> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!events_.empty() && events.size() < aer_cids_.size()) {
      events.push_back(events_.front());
      events_.pop_front();
    }
  }
  for (const nvme::AsyncEvent& e : events) {
    Request req;
    req.cid = aer_cids_.front();
    aer_cids_.erase(aer_cids_.begin());
    req.track = true;
    // Completion DW0 (Base 2.0 Figure 146): type 2:0, information 15:8, log page 23:16.
    req.dw0 = uint32_t{e.type} | (uint32_t{e.info} << 8) | (uint32_t{e.log_page} << 16);
    NLOG(INFO) << name_ << ": asynchronous event: " << nvme::AsyncEventName(e);
    target_->stats_.events++;
    Respond(req);
  }
}

int64_t Connection::LastKeepAliveNs() const {
  if (!ctrl_ || !ctrl_->tbkas) return last_admin_cmd_ns_;
  return std::max(last_admin_cmd_ns_, ctrl_->last_command_ns.load(std::memory_order_relaxed));
}

void Connection::CheckKeepAlive() {
  if (qid_ != 0 || !ctrl_ || state_ != State::kLive) return;
  const uint32_t kato = ctrl_->kato_ms.load();
  if (kato == 0) return;
  if (MonotonicNanos() - LastKeepAliveNs() > int64_t{kato} * kNanosPerMs) {
    NLOG(WARNING) << name_ << ": no command for KATO " << kato
                  << " ms: keep-alive timeout, dropping the controller";
    Close("keep-alive timeout");
  }
}

void Connection::Cleanup() {
  ::shutdown(sock_.get(), SHUT_RDWR);
  if (!ctrl_) return;
  if (qid_ == 0) {
    ctrl_->DetachAdmin(this);
    target_->RemoveController(ctrl_);
  } else {
    ctrl_->DetachIo(qid_, this);
  }
}

// --- Receiving ---------------------------------------------------------------------------------

std::optional<tcp::PduError> Connection::OnPduHeader(const tcp::PduHeader& h, uint8_t** dest) {
  if (state_ == State::kWaitIcReq && h.type != tcp::PduType::kIcReq &&
      h.type != tcp::PduType::kH2CTermReq) {
    return tcp::PduError{tcp::Fes::kPduSequenceError, 0,
                         absl::StrFormat("%s before ICReq", tcp::ToString(h.type))};
  }
  switch (h.type) {
    case tcp::PduType::kIcReq:
      if (state_ != State::kWaitIcReq) {
        return tcp::PduError{tcp::Fes::kPduSequenceError, 0, "second ICReq"};
      }
      return std::nullopt;
    case tcp::PduType::kCapsuleCmd:
      if (h.data_len > 0) {
        capsule_data_.resize(h.data_len);
        *dest = capsule_data_.data();
      }
      return std::nullopt;
    case tcp::PduType::kH2CData:
      return OnH2CDataHeader(h, dest);
    default:
      return std::nullopt;
  }
}

std::optional<tcp::PduError> Connection::OnPduComplete(const tcp::PduHeader& h, bool ddgst_ok,
                                                       const uint8_t* term_data) {
  (void)term_data;
  switch (h.type) {
    case tcp::PduType::kIcReq:
      return OnIcReq(h.as<tcp::IcReqPdu>());
    case tcp::PduType::kH2CTermReq: {
      const auto& t = h.as<tcp::TermReqPdu>();
      target_->stats_.host_term_reqs++;
      target_->stats_.last_host_fes = t.fes.get();
      target_->stats_.last_host_fei = t.fei.get();
      Close(absl::StrFormat("host sent H2CTermReq: FES 0x%02x %s, FEI %u", t.fes.get(),
                            tcp::ToString(static_cast<tcp::Fes>(t.fes.get())), t.fei.get()));
      return StopParsing();
    }
    case tcp::PduType::kCapsuleCmd: {
      const nvme::Sqe sqe = h.as<tcp::CapsuleCmdPdu>().sqe;
      return OnCapsule(sqe, ddgst_ok, h);
    }
    case tcp::PduType::kH2CData:
      OnH2CDataComplete(h.as<tcp::DataPdu>(), ddgst_ok);
      return state_ == State::kClosing ? StopParsing() : std::nullopt;
    default:
      return tcp::PduError{tcp::Fes::kInvalidHeaderField, 0, "unexpected PDU type"};
  }
}

std::optional<tcp::PduError> Connection::OnIcReq(const tcp::IcReqPdu& req) {
  if (req.pfv.get() != tcp::kPfv10) {
    return tcp::PduError{tcp::Fes::kUnsupportedParameter, offsetof(tcp::IcReqPdu, pfv),
                         absl::StrFormat("ICReq PFV %u is not supported", req.pfv.get())};
  }
  if (req.hpda > tcp::kMaxPda) {
    return tcp::PduError{tcp::Fes::kUnsupportedParameter, offsetof(tcp::IcReqPdu, hpda),
                         absl::StrFormat("ICReq HPDA %u is out of range (0..31)", req.hpda)};
  }
  transport_ = target_->TransportFor(port_index_);
  const bool hd = (req.dgst & tcp::kDgstHeader) && transport_.allow_header_digest;
  const bool dd = (req.dgst & tcp::kDgstData) && transport_.allow_data_digest;
  host_maxr2t_ = uint64_t{req.maxr2t.get()} + 1;
  uint8_t hdr[tcp::kMaxHeaderBytes];
  const uint32_t n = tcp::EncodeIcResp(
      hdr, transport_.cpda,
      static_cast<uint8_t>((hd ? tcp::kDgstHeader : 0) | (dd ? tcp::kDgstData : 0)),
      transport_.maxh2cdata);
  ApplyIcRespMalice(reinterpret_cast<tcp::IcRespPdu*>(hdr));
  out_.insert(out_.end(), hdr, hdr + n);

  tcp::PduParserOptions o = parser_.options();
  o.header_digest = hd;
  o.data_digest = dd;
  o.data_alignment = tcp::PdaBytes(transport_.cpda);
  o.max_data =
      std::max({transport_.maxh2cdata, target_->config().in_capsule_data, kAdminInCapsuleMax});
  parser_.Reconfigure(o);
  wire_ = tcp::WireFormat{hd, dd, tcp::PdaBytes(req.hpda)};
  NLOG(DEBUG) << name_ << ": ICReq HPDA " << int{req.hpda} << " MAXR2T " << req.maxr2t.get()
              << ", granted HDGST " << hd << " DDGST " << dd << ", CPDA " << int{transport_.cpda}
              << " MAXH2CDATA " << transport_.maxh2cdata;
  SetState(State::kWaitConnect);
  return std::nullopt;
}

std::optional<tcp::PduError> Connection::OnCapsule(const nvme::Sqe& sqe, bool ddgst_ok,
                                                   const tcp::PduHeader& h) {
  target_->stats_.capsules++;
  Request req;
  req.sqe = sqe;
  req.cid = sqe.cid.get();
  req.dir = nvme::DirectionOf(sqe);
  req.xfer_len = sqe.dptr.length.get();
  req.digest_error = !ddgst_ok;
  const uint32_t in_capsule = h.data_len;
  if (in_capsule > 0) req.data = std::move(capsule_data_);
  capsule_data_.clear();
  sq_head_ = (sq_head_ + 1) % sq_entries_;

  const bool fabrics = sqe.opcode == nvme::kFabricsOpcode;
  const uint8_t fctype = reinterpret_cast<const nvme::FabricsSqe&>(sqe).fctype;
  if (state_ == State::kWaitConnect) {
    if (!fabrics || fctype != static_cast<uint8_t>(nvme::FabricsType::kConnect)) {
      NLOG(WARNING) << name_ << ": " << nvme::CommandName(sqe, true) << " before Connect";
      req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScCommandSequenceError, true);
      Respond(req);
      return std::nullopt;
    }
  } else {
    if (qid_ == 0) last_admin_cmd_ns_ = MonotonicNanos();
    if (ctrl_ && ctrl_->tbkas)
      ctrl_->last_command_ns.store(MonotonicNanos(), std::memory_order_relaxed);
    // SPDK's host, shutting down, reuses the command IDs of its outstanding Asynchronous Event
    // Requests (it has given them up); nvmet does not check. Such an AER is dropped, unanswered.
    if (qid_ == 0 && active_cids_.count(req.cid) != 0) {
      auto aer = std::find(aer_cids_.begin(), aer_cids_.end(), req.cid);
      if (aer != aer_cids_.end()) {
        NLOG(INFO) << name_ << ": command ID " << req.cid
                   << " of an outstanding AER reused by the host: that AER is dropped";
        aer_cids_.erase(aer);
        active_cids_.erase(req.cid);
      }
    }
    if (!active_cids_.insert(req.cid).second) {
      NLOG(WARNING) << name_ << ": command ID " << req.cid << " is already in use";
      req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScCidConflict, true);
      Respond(req);
      return std::nullopt;
    }
    req.track = true;
    const bool aer =
        qid_ == 0 && sqe.opcode == static_cast<uint8_t>(nvme::AdminOpcode::kAsyncEventRequest);
    if (qid_ != 0 || (!fabrics && !aer)) {
      ++commands_;
      std::shared_ptr<FaultState> fs = target_->FaultFor(port_index_);
      if (fs && (qid_ != 0 || fs->config.admin)) {
        const FaultConfig& f = fs->config;
        if (f.cut_after > 0 && commands_ > f.cut_after) {
          Close(absl::StrFormat("fault injection: cut after %u commands", f.cut_after));
          return StopParsing();
        }
        if (FaultState::Take(fs->term_req)) {
          TerminateConnection(tcp::Fes::kInvalidHeaderField, 0, {h.bytes, h.hlen},
                              "fault injection: C2HTermReq instead of a response");
          return StopParsing();
        }
        if (FaultState::Take(fs->error_count)) {
          NLOG(INFO) << name_ << ": fault injection: CID " << req.cid << " fails with status 0x"
                     << absl::StrFormat("%03x", f.error_status);
          req.status = f.error_status;
          req.dir = nvme::DataDirection::kNone;  // no data moves
          Respond(req);
          return std::nullopt;
        }
        req.drop = f.drop_every > 0 && commands_ % f.drop_every == 0;
        req.delay_ms = f.delay_ms;
        MaybeArmMalice(req, *fs);
        req.fault = std::move(fs);
        if (req.drop) NLOG(INFO) << name_ << ": fault injection: dropping CID " << req.cid;
      } else if (fs && qid_ == 0 && fs->config.keep_alive_delay_ms > 0 &&
                 sqe.opcode == static_cast<uint8_t>(nvme::AdminOpcode::kKeepAlive)) {
        req.delay_ms = fs->config.keep_alive_delay_ms;
      }
    }
  }
  if (!ValidateTransfer(req, in_capsule)) return std::nullopt;
  if (req.dir == nvme::DataDirection::kHostToController &&
      req.sqe.dptr.sgl_id == nvme::kSglIdTransport && req.xfer_len > 0) {
    const uint16_t cid = req.cid;
    PendingWrite& w = writes_[cid];
    w = PendingWrite{};
    w.req = std::move(req);
    w.req.data.assign(w.req.xfer_len, 0);
    w.end = w.req.xfer_len;
    if (w.req.malice == Malice::kNone || !IssueMaliciousR2Ts(w)) IssueR2Ts(w);
    return std::nullopt;
  }
  Execute(std::move(req));
  return state_ == State::kClosing ? StopParsing() : std::nullopt;
}

bool Connection::ValidateTransfer(Request& req, uint32_t in_capsule) {
  const uint8_t sgl_id = req.sqe.dptr.sgl_id;
  const uint32_t len = req.xfer_len;
  auto fail = [&](uint8_t sc, const char* why) {
    NLOG(WARNING) << name_ << ": " << nvme::CommandName(req.sqe, qid_ == 0) << " CID " << req.cid
                  << ": " << why;
    req.status = nvme::MakeStatus(nvme::kSctGeneric, sc, true);
    req.dir = nvme::DataDirection::kNone;
    Respond(req);
    return false;
  };
  const uint8_t mdts = target_->config().mdts;
  const bool too_big = mdts > 0 && mdts < 20 && len > (4096u << mdts);
  switch (req.dir) {
    case nvme::DataDirection::kNone:
      return true;
    case nvme::DataDirection::kHostToController:
      if (sgl_id == nvme::kSglIdInCapsule) {
        uint32_t limit = target_->config().in_capsule_data;
        if (qid_ == 0 || state_ == State::kWaitConnect) limit = std::max(limit, kAdminInCapsuleMax);
        if (req.sqe.dptr.address.get() != 0 || len > limit) {
          return fail(kScSglOffsetInvalid, "in-capsule data beyond the capsule");
        }
        if (len != in_capsule) {
          return fail(kScDataSglLengthInvalid, "SGL length != in-capsule data");
        }
        if (req.digest_error) {
          req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScTransientTransportError);
          req.dir = nvme::DataDirection::kNone;
          NLOG(WARNING) << name_ << ": data digest error in capsule CID " << req.cid;
          Respond(req);
          return false;
        }
        return true;
      }
      if (sgl_id == nvme::kSglIdTransport) {
        if (in_capsule > 0) {
          return fail(nvme::kScInvalidField, "in-capsule data with a transport SGL");
        }
        if (too_big) return fail(nvme::kScInvalidField, "transfer larger than MDTS");
        return true;
      }
      return fail(kScSglDescriptorTypeInvalid, "unsupported SGL descriptor type");
    case nvme::DataDirection::kControllerToHost:
      if (sgl_id != nvme::kSglIdTransport) {
        return fail(kScSglDescriptorTypeInvalid, "read data needs a transport SGL");
      }
      if (in_capsule > 0) return fail(nvme::kScInvalidField, "in-capsule data with a read");
      if (too_big) return fail(nvme::kScInvalidField, "transfer larger than MDTS");
      return true;
  }
  return fail(nvme::kScInvalidOpcode, "bidirectional command");
}

void Connection::IssueR2Ts(PendingWrite& w) {
  const uint64_t limit = std::min<uint64_t>(transport_.max_r2t, host_maxr2t_);
  while (w.requested < w.end && w.outstanding < limit) {
    uint32_t chunk = w.end - w.requested;
    if (transport_.r2t_chunk > 0) chunk = std::min(chunk, transport_.r2t_chunk);
    uint16_t ttag = next_ttag_++;
    while (ttag == 0xFFFF || r2ts_.count(ttag)) ttag = next_ttag_++;
    r2ts_[ttag] = R2tState{w.req.cid, w.requested, chunk};
    uint8_t hdr[tcp::kMaxHeaderBytes];
    const uint32_t n = tcp::EncodeR2T(hdr, w.req.cid, ttag, w.requested, chunk, wire_);
    tcp::AppendPdu(&out_, hdr, n, {}, wire_);
    w.requested += chunk;
    ++w.outstanding;
    target_->stats_.r2ts++;
  }
}

std::optional<tcp::PduError> Connection::OnH2CDataHeader(const tcp::PduHeader& h, uint8_t** dest) {
  const auto& pdu = h.as<tcp::DataPdu>();
  const uint16_t ttag = pdu.ttag.get();
  auto it = r2ts_.find(ttag);
  if (it == r2ts_.end()) {
    return tcp::PduError{tcp::Fes::kInvalidHeaderField, offsetof(tcp::DataPdu, ttag),
                         absl::StrFormat("H2CData TTAG %u matches no outstanding R2T", ttag)};
  }
  const R2tState& r = it->second;
  if (pdu.cccid.get() != r.cid) {
    return tcp::PduError{tcp::Fes::kInvalidHeaderField, offsetof(tcp::DataPdu, cccid),
                         absl::StrFormat("H2CData CCCID %u, but TTAG %u belongs to CID %u",
                                         pdu.cccid.get(), ttag, r.cid)};
  }
  const uint32_t datao = pdu.datao.get(), datal = pdu.datal.get();
  if (datal > transport_.maxh2cdata) {
    return tcp::PduError{
        tcp::Fes::kR2TLimitExceeded, 0,
        absl::StrFormat("H2CData DATAL %u exceeds MAXH2CDATA %u", datal, transport_.maxh2cdata)};
  }
  if (datao < r.offset || uint64_t{datao} + datal > uint64_t{r.offset} + r.length) {
    return tcp::PduError{tcp::Fes::kDataOutOfRange, 0,
                         absl::StrFormat("H2CData DATAO %u DATAL %u outside R2T [%u, %u)", datao,
                                         datal, r.offset, r.offset + r.length)};
  }
  if (datao != r.offset + r.received) {
    return tcp::PduError{
        tcp::Fes::kPduSequenceError, 0,
        absl::StrFormat("H2CData DATAO %u, expected %u", datao, r.offset + r.received)};
  }
  const bool last = datao + datal == r.offset + r.length;
  if (last != ((h.flags & tcp::kFlagLastPdu) != 0)) {
    return tcp::PduError{tcp::Fes::kInvalidHeaderField, offsetof(tcp::CommonHeader, flags),
                         absl::StrFormat("H2CData LAST_PDU is %d at DATAO %u DATAL %u of R2T "
                                         "[%u, %u)",
                                         (h.flags & tcp::kFlagLastPdu) != 0, datao, datal, r.offset,
                                         r.offset + r.length)};
  }
  PendingWrite& w = writes_.at(r.cid);
  *dest = w.req.data.data() + datao;
  return std::nullopt;
}

void Connection::OnH2CDataComplete(const tcp::DataPdu& pdu, bool ddgst_ok) {
  auto it = r2ts_.find(pdu.ttag.get());
  if (it == r2ts_.end()) return;  // cannot happen: checked in OnH2CDataHeader
  target_->stats_.h2c_data++;
  R2tState& r = it->second;
  auto wit = writes_.find(r.cid);
  PendingWrite& w = wit->second;
  r.received += pdu.datal.get();
  if (!ddgst_ok) {
    NLOG(WARNING) << name_ << ": data digest error in H2CData for CID " << r.cid;
    w.req.digest_error = true;
  }
  if (r.received < r.length) return;
  w.received += r.length;
  --w.outstanding;
  r2ts_.erase(it);
  if (w.received < w.end) {
    IssueR2Ts(w);
    return;
  }
  Request req = std::move(w.req);
  writes_.erase(wit);
  if (req.malice == Malice::kWriteDoneAfterHalf) {
    NLOG(INFO) << name_ << ": malice: CID " << req.cid << " completed after half its data";
    target_->stats_.malice++;
    req.dir = nvme::DataDirection::kNone;
    Respond(req);  // success, data never written
    return;
  }
  if (req.digest_error) {
    // NVMe/TCP 1.0: a data digest error fails the command (Transient Transport Error), not the
    // connection.
    req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScTransientTransportError);
    Respond(req);
    return;
  }
  Execute(std::move(req));
}

// --- Executing and responding ------------------------------------------------------------------

void Connection::Execute(Request req) {
  Outcome outcome;
  const bool fabrics = req.sqe.opcode == nvme::kFabricsOpcode;
  const auto fctype =
      static_cast<nvme::FabricsType>(reinterpret_cast<const nvme::FabricsSqe&>(req.sqe).fctype);
  if (auth_ && !auth_->authenticated() &&
      !(fabrics &&
        (fctype == nvme::FabricsType::kAuthSend || fctype == nvme::FabricsType::kAuthReceive ||
         fctype == nvme::FabricsType::kDisconnect))) {
    // Base 2.0 §8.13.5: until the queue is authenticated, other commands fail.
    req.status = nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScAuthRequired, true);
    req.dir = nvme::DataDirection::kNone;
    Respond(req);
    return;
  }
  if (fabrics) {
    outcome = ExecuteFabrics(req);
  } else if (qid_ == 0) {
    outcome = ExecuteAdmin(req);
  } else {
    ExecuteIo(req);
    outcome = Outcome::kRespond;
  }
  if (outcome == Outcome::kRespond) Respond(req);
}

nvme::Cqe Connection::MakeCqe(const Request& req) const {
  nvme::Cqe cqe{};
  cqe.dw0.set(req.dw0);
  cqe.dw1.set(req.dw1);
  cqe.sq_head.set(sq_flow_control_disabled_ ? 0xFFFF : static_cast<uint16_t>(sq_head_));
  cqe.sq_id.set(qid_);
  cqe.cid.set(req.cid);
  cqe.status.set(static_cast<uint16_t>(req.status << 1));
  return cqe;
}

void Connection::EncodeCapsuleResp(const nvme::Cqe& cqe, std::vector<uint8_t>* out) const {
  uint8_t hdr[tcp::kMaxHeaderBytes];
  const uint32_t n = tcp::EncodeCapsuleResp(hdr, cqe, wire_);
  tcp::AppendPdu(out, hdr, n, {}, wire_);
}

void Connection::Respond(Request& req) {
  if (req.malice != Malice::kNone && RespondMaliciously(req)) return;
  const nvme::Cqe cqe = MakeCqe(req);
  // Responses go straight into the output buffer, unless fault injection holds them back.
  const bool hold = req.drop || req.delay_ms > 0;
  std::vector<uint8_t> held_bytes;
  std::vector<uint8_t>& bytes = hold ? held_bytes : out_;
  bool success_flag = false;
  if (req.dir == nvme::DataDirection::kControllerToHost && req.status == 0 && req.xfer_len > 0) {
    req.data.resize(req.xfer_len);  // exactly what the host's SGL describes
    const bool corrupt =
        wire_.data_digest && req.fault && FaultState::Take(req.fault->corrupt_digest);
    // The C2HData SUCCESS flag (NVMe/TCP 1.0) only where SQ flow control is disabled: the host then
    // needs no SQHD from a CapsuleResp.
    success_flag = transport_.c2h_success && sq_flow_control_disabled_;
    const uint32_t total = req.xfer_len;
    bytes.reserve(bytes.size() + total + (total / transport_.c2h_chunk + 2) * 64);
    for (uint32_t off = 0; off < total;) {
      const uint32_t n = std::min(transport_.c2h_chunk, total - off);
      const bool last = off + n == total;
      const uint8_t flags =
          last ? static_cast<uint8_t>(tcp::kFlagLastPdu | (success_flag ? tcp::kFlagSuccess : 0))
               : 0;
      uint8_t hdr[tcp::kMaxHeaderBytes];
      const uint32_t hl =
          tcp::EncodeDataPdu(hdr, tcp::PduType::kC2HData, flags, req.cid, 0, off, n, wire_);
      tcp::AppendPdu(&bytes, hdr, hl, {req.data.data() + off, n}, wire_);
      if (corrupt && last) {
        NLOG(INFO) << name_ << ": fault injection: corrupting the data digest of CID " << req.cid;
        bytes.back() ^= 0x5A;  // the last byte of the data digest
      }
      off += n;
      target_->stats_.c2h_data++;
    }
    if (success_flag) target_->stats_.c2h_success++;
  }
  if (!success_flag) EncodeCapsuleResp(cqe, &bytes);
  if (!hold) {
    if (req.track) active_cids_.erase(req.cid);
    return;
  }
  Held h;
  h.deadline_ns = req.drop ? INT64_MAX : MonotonicNanos() + int64_t{req.delay_ms} * kNanosPerMs;
  h.cid = req.cid;
  h.cqe = cqe;
  h.bytes = std::move(held_bytes);
  std::lock_guard<std::mutex> lock(mu_);
  held_.push_back(std::move(h));
}

}  // namespace nvmf_ublk::target
