#include "io/tcp_connection.h"

#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "io/ktls.h"

namespace nvmf_ublk::io {
namespace {
constexpr size_t kRecvBufferBytes = 64 * 1024;
// Payload at least this large is received straight into the command's buffer.
constexpr size_t kDirectRecvBytes = 8 * 1024;
// How long a closing connection may spend writing its H2CTermReq before the socket is shut down.
constexpr int64_t kTermReqTimeoutNs = 1'000'000'000;
}  // namespace

const char* TcpConnection::ToString(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kConnecting:
      return "connecting";
    case State::kTls:
      return "tls-handshake";
    case State::kHandshake:
      return "handshake";
    case State::kLive:
      return "live";
    case State::kClosing:
      return "closing";
    case State::kClosed:
      return "closed";
  }
  return "?";
}

TcpConnection::TcpConnection(Reactor* reactor, ConnectionOptions options,
                             ConnectionObserver* observer)
    : reactor_(reactor),
      options_(std::move(options)),
      observer_(observer),
      queue_(options_.queue, this),
      recv_buf_(kRecvBufferBytes) {
  id_ = reactor_->Register(this);
}

TcpConnection::~TcpConnection() {
  if (connect_inflight_ || send_inflight_ || recv_inflight_) {
    // The kernel may still write into recv_buf_ or a command buffer: wait until it cannot.
    NLOG(ERROR) << name() << ": destroyed with operations in flight (state " << ToString(state_)
                << "); cancelling and waiting for them";
    DrainNow();
  }
  if (handshake_timer_) reactor_->CancelTimer(handshake_timer_);
  if (term_timer_) reactor_->CancelTimer(term_timer_);
  reactor_->CancelFlush(this);
  reactor_->Unregister(id_);
}

void TcpConnection::SetState(State s) {
  if (s == state_) return;
  NLOG(DEBUG) << name() << ": " << ToString(state_) << " -> " << ToString(s);
  state_ = s;
}

absl::Status TcpConnection::OpenSocket() {
  const SocketAddress& t = options_.target;
  fd_.reset(::socket(t.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd_) return ErrnoToStatus(errno, "socket");
  const int one = 1;
  if (setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return ErrnoToStatus(errno, "setsockopt(TCP_NODELAY)");
  }
  if (options_.tos >= 0) {
    const int tos = options_.tos;
    const bool v6 = t.family() == AF_INET6;
    if (setsockopt(fd_.get(), v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TCLASS : IP_TOS, &tos,
                   sizeof(tos)) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("set type of service ", tos));
    }
  }
  if (!options_.interface.empty()) {
    if (setsockopt(fd_.get(), SOL_SOCKET, SO_BINDTODEVICE, options_.interface.c_str(),
                   static_cast<socklen_t>(options_.interface.size())) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("bind to interface ", options_.interface));
    }
  }
  if (options_.source) {
    if (::bind(fd_.get(), options_.source->get(), options_.source->len) != 0) {
      return ErrnoToStatus(errno,
                           absl::StrCat("bind to host address ", options_.source->ToString()));
    }
  }
  return absl::OkStatus();
}

void TcpConnection::Start() {
  if (state_ != State::kIdle) return;
  SetState(State::kConnecting);
  handshake_timer_ = reactor_->AddTimerAfter(options_.connect_timeout_ns, [this] {
    handshake_timer_ = 0;
    const char* stage = state_ == State::kConnecting ? "TCP connect"
                        : state_ == State::kTls      ? "TLS handshake"
                        : queue_.state() == tcp::HostQueue::State::kAuthenticating
                            ? "DH-HMAC-CHAP authentication"
                            : "NVMe/TCP handshake";
    Close(absl::DeadlineExceededError(
        absl::StrCat(stage, " to ", options_.target.ToString(), " timed out after ",
                     options_.connect_timeout_ns / 1'000'000'000, " s")));
  });
  if (absl::Status s = OpenSocket(); !s.ok()) {
    Close(s);
    return;
  }
  io_uring_sqe* sqe = reactor_->GetSqe(id_, kOpConnect, 0);
  io_uring_prep_connect(sqe, fd_.get(), options_.target.get(), options_.target.len);
  connect_inflight_ = true;
}

void TcpConnection::OnCompletion(uint8_t op, uint16_t, int32_t res, uint32_t) {
  switch (op) {
    case kOpConnect:
      connect_inflight_ = false;
      OnConnected(res);
      break;
    case kOpSend:
      send_inflight_ = false;
      OnSent(res);
      break;
    case kOpRecv:
      recv_inflight_ = false;
      OnReceived(res);
      break;
    default:
      break;  // cancel completions
  }
  MaybeFinishClose();
}

void TcpConnection::OnConnected(int res) {
  if (state_ != State::kConnecting) return;
  if (res < 0) {
    Close(ErrnoToStatus(res, absl::StrCat("connect to ", options_.target.ToString())));
    return;
  }
  if (options_.tls) {
    StartTls();
    return;
  }
  StartQueue();
}

void TcpConnection::StartQueue() {
  SetState(State::kHandshake);
  if (absl::Status s = queue_.Start(); !s.ok()) {
    Close(s);
    return;
  }
  ArmRecv();
  reactor_->RequestFlush(this);
}

void TcpConnection::StartTls() {
  SetState(State::kTls);
  auto hs =
      auth::TlsHandshake::Client(options_.tls->identity, options_.tls->psk, options_.tls->hash);
  if (!hs.ok()) {
    Close(hs.status());
    return;
  }
  tls_ = std::move(*hs);
  if (absl::Status s = tls_->Start(); !s.ok()) {
    Close(s);
    return;
  }
  tls_out_ = tls_->TakeOutput();
  tls_out_sent_ = 0;
  SendTls();
  ArmRecv();
}

void TcpConnection::SendTls() {
  if (send_inflight_ || tls_out_sent_ >= tls_out_.size()) return;
  io_uring_sqe* sqe = reactor_->GetSqe(id_, kOpSend, 0);
  io_uring_prep_send(sqe, fd_.get(), tls_out_.data() + tls_out_sent_,
                     tls_out_.size() - tls_out_sent_, MSG_NOSIGNAL);
  send_inflight_ = true;
}

void TcpConnection::FinishTls() {
  // The server's records after its Finished would be the kernel's to open; an NVMe/TCP
  // controller sends nothing before the host's ICReq.
  if (tls_->trailing_bytes() != 0) {
    Close(absl::DataLossError("TLS: the target sent data before the ICReq"));
    return;
  }
  if (absl::Status s = InstallKernelTls(fd_.get(), *tls_); !s.ok()) {
    Close(s);
    return;
  }
  ktls_ = true;
  NLOG(DEBUG) << name() << ": TLS 1.3 (" << auth::ToString(tls_->hash()) << ", PSK identity "
              << options_.tls->identity << ") up, records in kernel TLS";
  tls_.reset();
  auth::Wipe(tls_out_);
  StartQueue();
}

void TcpConnection::ArmRecv() {
  if (recv_inflight_ || state_ == State::kClosing || state_ == State::kClosed) return;
  std::span<uint8_t> direct = state_ == State::kTls ? std::span<uint8_t>() : queue_.RecvBuffer();
  io_uring_sqe* sqe = reactor_->GetSqe(id_, kOpRecv, 0);
  recv_direct_ = direct.size() >= kDirectRecvBytes;
  if (recv_direct_) {
    io_uring_prep_recv(sqe, fd_.get(), direct.data(), direct.size(), 0);
  } else {
    io_uring_prep_recv(sqe, fd_.get(), recv_buf_.data(), recv_buf_.size(), 0);
  }
  recv_inflight_ = true;
}

void TcpConnection::OnReceived(int res) {
  if (state_ == State::kClosing && terminating_ && res > 0) {
    // Keep reading (and dropping) while the TermReq goes out, so that a controller blocked on a
    // full socket can take it.
    io_uring_sqe* sqe = reactor_->GetSqe(id_, kOpRecv, 0);
    recv_direct_ = false;
    io_uring_prep_recv(sqe, fd_.get(), recv_buf_.data(), recv_buf_.size(), 0);
    recv_inflight_ = true;
    return;
  }
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  if (res <= 0) {
    if (ktls_ && (res == -EIO || res == -EBADMSG || res == -EKEYEXPIRED)) {
      // Kernel TLS hands only application data to a plain recv: anything else (an alert, a
      // KeyUpdate) or a record that does not authenticate ends here.
      Close(absl::UnavailableError(absl::StrCat(
          "TLS: ", options_.target.ToString(),
          res == -EBADMSG ? " sent a record that does not authenticate"
                          : " sent a TLS record that is not data (an alert or a key update)")));
      return;
    }
    if (state_ == State::kTls && (res == 0 || res == -ECONNRESET)) {
      // tlshd (nvmet's handshake agent) closes without an alert when the PSK does not fit.
      Close(absl::UnauthenticatedError(
          absl::StrCat("TLS handshake failed: ", options_.target.ToString(),
                       " closed the connection (no PSK for identity '", options_.tls->identity,
                       "', or a different key under it)")));
      return;
    }
    Close(res == 0 ? absl::UnavailableError(
                         absl::StrCat("connection closed by ", options_.target.ToString()))
                   : ErrnoToStatus(res, absl::StrCat("recv from ", options_.target.ToString())));
    return;
  }
  if (state_ == State::kTls) {
    absl::Status s =
        tls_->Feed(std::span<const uint8_t>(recv_buf_.data(), static_cast<size_t>(res)));
    auth::Bytes more = tls_->TakeOutput();
    tls_out_.insert(tls_out_.end(), more.begin(), more.end());
    if (!s.ok()) {
      Close(s);
      return;
    }
    SendTls();
    if (!tls_->done()) {
      ArmRecv();
    } else if (!send_inflight_) {
      FinishTls();
    }
    return;
  }
  if (recv_direct_) {
    queue_.Commit(static_cast<size_t>(res));
  } else {
    queue_.Feed(recv_buf_.data(), static_cast<size_t>(res));
  }
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  if (queue_.HasPendingSend()) reactor_->RequestFlush(this);
  ArmRecv();
}

void TcpConnection::Flush() {
  if (send_inflight_ || (state_ != State::kHandshake && state_ != State::kLive)) return;
  if (!queue_.HasPendingSend()) return;
  SendPending();
}

void TcpConnection::SendPending() {
  const int n = queue_.PendingSend(iov_, static_cast<int>(std::size(iov_)));
  std::memset(&msg_, 0, sizeof(msg_));
  msg_.msg_iov = iov_;
  msg_.msg_iovlen = static_cast<size_t>(n);
  io_uring_sqe* sqe = reactor_->GetSqe(id_, kOpSend, 0);
  io_uring_prep_sendmsg(sqe, fd_.get(), &msg_, MSG_NOSIGNAL);
  send_inflight_ = true;
}

void TcpConnection::OnSent(int res) {
  if (state_ == State::kClosing && terminating_) {
    if (res > 0) queue_.SendComplete(static_cast<size_t>(res));
    ContinueTermination(res > 0);
    return;
  }
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  if (res < 0) {
    Close(ErrnoToStatus(res, absl::StrCat("send to ", options_.target.ToString())));
    return;
  }
  if (state_ == State::kTls) {
    tls_out_sent_ += static_cast<size_t>(res);
    if (tls_out_sent_ < tls_out_.size()) {
      SendTls();
    } else if (tls_->done()) {
      FinishTls();
    }
    return;
  }
  queue_.SendComplete(static_cast<size_t>(res));
  if (queue_.HasPendingSend()) Flush();
}

int TcpConnection::Submit(const nvme::Sqe& sqe, void* data, uint32_t len, uint64_t cookie) {
  if (state_ != State::kLive) return -ENOTCONN;
  const int rc = queue_.Submit(sqe, data, len, cookie);
  if (rc >= 0) reactor_->RequestFlush(this);
  return rc;
}

void TcpConnection::OnQueueLive(uint16_t) {
  if (handshake_timer_) {
    reactor_->CancelTimer(handshake_timer_);
    handshake_timer_ = 0;
  }
  SetState(State::kLive);
  observer_->OnConnectionLive(this);
}

void TcpConnection::OnCommandDone(uint64_t cookie, const nvme::Cqe& cqe, int error) {
  observer_->OnCommandDone(this, cookie, cqe, error);
}

void TcpConnection::OnQueueFailed(const absl::Status& status) { Close(status); }

void TcpConnection::ContinueTermination(bool ok) {
  // Called with no send in flight; `ok` is false when the last send failed. The first call turns
  // the send queue into "rest of the PDU being written, then the TermReq"; later calls write what
  // is left of that.
  if (ok && !term_started_) {
    term_started_ = true;
    queue_.BeginTermination();
  }
  if (ok && queue_.HasPendingSend()) {
    SendPending();
    return;
  }
  if (ok) NLOG(DEBUG) << name() << ": H2CTermReq written";
  EndTermination();
}

void TcpConnection::EndTermination() {
  terminating_ = false;
  if (term_timer_) {
    reactor_->CancelTimer(term_timer_);
    term_timer_ = 0;
  }
  if (fd_) ::shutdown(fd_.get(), SHUT_RDWR);
  const uint8_t ops[] = {kOpSend, kOpRecv};
  const bool inflight[] = {send_inflight_, recv_inflight_};
  for (int i = 0; i < 2; ++i) {
    if (!inflight[i]) continue;
    io_uring_sqe* sqe = reactor_->GetSqe(id_, kOpCancel, 0);
    io_uring_prep_cancel64(sqe, UserData::Encode(id_, ops[i], 0), 0);
  }
}

void TcpConnection::DrainNow() {
  // Closed without the observer: completions that arrive now only clear their in-flight flag.
  SetState(State::kClosed);
  terminating_ = false;
  if (!reactor_->InReactorThread()) {
    // Cannot run the loop from here: keep the receive buffer alive forever rather than let the
    // kernel write into freed memory.
    NLOG(ERROR) << name() << ": not on the reactor thread; leaking the receive buffer";
    new std::vector<uint8_t>(std::move(recv_buf_));  // NOLINT: deliberate leak
    return;
  }
  const uint8_t ops[] = {kOpConnect, kOpSend, kOpRecv};
  const bool inflight[] = {connect_inflight_, send_inflight_, recv_inflight_};
  if (fd_) ::shutdown(fd_.get(), SHUT_RDWR);
  for (int i = 0; i < 3; ++i) {
    if (!inflight[i]) continue;
    io_uring_sqe* sqe = reactor_->GetSqe(id_, kOpCancel, 0);
    io_uring_prep_cancel64(sqe, UserData::Encode(id_, ops[i], 0), 0);
  }
  draining_ = true;
  reactor_->DrainHandler(id_,
                         [this] { return connect_inflight_ || send_inflight_ || recv_inflight_; });
}

void TcpConnection::Close(const absl::Status& why) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  close_reason_ = why;
  if (!why.ok()) NLOG(INFO) << name() << ": closing: " << why;
  if (handshake_timer_) {
    reactor_->CancelTimer(handshake_timer_);
    handshake_timer_ = 0;
  }
  const bool connected = state_ == State::kHandshake || state_ == State::kLive;  // (not kTls)
  SetState(State::kClosing);  // first: the queue's failure callback re-enters Close()
  observer_->OnConnectionClosing(this);
  if (queue_.state() != tcp::HostQueue::State::kFailed) {
    queue_.Fail(why.ok() ? absl::UnavailableError("connection closed") : why);
  }
  // A protocol error owes the controller an H2CTermReq (NVMe/TCP 1.0 §3.6.2.3). It goes out after
  // the send in flight (if any) and the rest of a partly written PDU, bounded by a timer; the
  // socket is shut down after it. Reads stop now.
  terminating_ = connected && fd_ && queue_.termination_due();
  if (terminating_) {
    term_timer_ = reactor_->AddTimerAfter(kTermReqTimeoutNs, [this] {
      term_timer_ = 0;
      NLOG(INFO) << name() << ": H2CTermReq not written within 1 s; closing without it";
      EndTermination();
    });
    if (!send_inflight_) ContinueTermination(true);
  } else if (fd_) {
    ::shutdown(fd_.get(), SHUT_RDWR);
  }
  const uint8_t ops[] = {kOpConnect, kOpSend, kOpRecv};
  const bool inflight[] = {connect_inflight_, terminating_ ? false : send_inflight_,
                           terminating_ ? false : recv_inflight_};
  for (int i = 0; i < 3; ++i) {
    if (!inflight[i]) continue;
    io_uring_sqe* sqe = reactor_->GetSqe(id_, kOpCancel, 0);
    io_uring_prep_cancel64(sqe, UserData::Encode(id_, ops[i], 0), 0);
  }
  // Close() may run inside the queue's own callbacks: finish from a fresh stack frame.
  reactor_->Post([this] { MaybeFinishClose(); });
}

void TcpConnection::MaybeFinishClose() {
  if (state_ != State::kClosing || draining_) return;
  if (terminating_ || connect_inflight_ || send_inflight_ || recv_inflight_) return;
  fd_.reset();
  SetState(State::kClosed);
  // Every buffer is ours again: fail the commands that never completed.
  queue_.FailOutstanding(-ECONNABORTED);
  observer_->OnConnectionClosed(this, close_reason_);
}

}  // namespace nvmf_ublk::io
