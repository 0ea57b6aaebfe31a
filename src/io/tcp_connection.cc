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

namespace nvmf_ublk::io {
namespace {
constexpr size_t kRecvBufferBytes = 64 * 1024;
// Payload at least this large is received straight into the command's buffer.
constexpr size_t kDirectRecvBytes = 8 * 1024;
}  // namespace

const char* TcpConnection::ToString(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kConnecting:
      return "connecting";
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
    NLOG(ERROR) << name() << ": destroyed with operations in flight (state " << ToString(state_)
                << ")";
  }
  if (handshake_timer_) reactor_->CancelTimer(handshake_timer_);
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
    const char* stage = state_ == State::kConnecting ? "TCP connect" : "NVMe/TCP handshake";
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
  SetState(State::kHandshake);
  if (absl::Status s = queue_.Start(); !s.ok()) {
    Close(s);
    return;
  }
  ArmRecv();
  reactor_->RequestFlush(this);
}

void TcpConnection::ArmRecv() {
  if (recv_inflight_ || state_ == State::kClosing || state_ == State::kClosed) return;
  std::span<uint8_t> direct = queue_.RecvBuffer();
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
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  if (res <= 0) {
    Close(res == 0 ? absl::UnavailableError(
                         absl::StrCat("connection closed by ", options_.target.ToString()))
                   : ErrnoToStatus(res, absl::StrCat("recv from ", options_.target.ToString())));
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
  const int n = queue_.PendingSend(iov_, static_cast<int>(std::size(iov_)));
  std::memset(&msg_, 0, sizeof(msg_));
  msg_.msg_iov = iov_;
  msg_.msg_iovlen = static_cast<size_t>(n);
  io_uring_sqe* sqe = reactor_->GetSqe(id_, kOpSend, 0);
  io_uring_prep_sendmsg(sqe, fd_.get(), &msg_, MSG_NOSIGNAL);
  send_inflight_ = true;
}

void TcpConnection::OnSent(int res) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  if (res < 0) {
    Close(ErrnoToStatus(res, absl::StrCat("send to ", options_.target.ToString())));
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

void TcpConnection::SendTermReqBestEffort() {
  // Only when nothing is in flight, so the TermReq starts on a PDU boundary. A non-blocking
  // syscall on the error path; the socket is shut down right after.
  if (send_inflight_ || !fd_ || !queue_.HasPendingSend()) return;
  iovec iov[8];
  const int n = queue_.PendingSend(iov, 8);
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<size_t>(n);
  const ssize_t sent = ::sendmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)sent;
}

void TcpConnection::Close(const absl::Status& why) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  close_reason_ = why;
  if (!why.ok()) NLOG(INFO) << name() << ": closing: " << why;
  if (handshake_timer_) {
    reactor_->CancelTimer(handshake_timer_);
    handshake_timer_ = 0;
  }
  SetState(State::kClosing);  // first: the queue's failure callback re-enters Close()
  if (queue_.state() != tcp::HostQueue::State::kFailed) {
    queue_.Fail(why.ok() ? absl::UnavailableError("connection closed") : why);
  }
  SendTermReqBestEffort();
  if (fd_) ::shutdown(fd_.get(), SHUT_RDWR);
  const uint8_t ops[] = {kOpConnect, kOpSend, kOpRecv};
  const bool inflight[] = {connect_inflight_, send_inflight_, recv_inflight_};
  for (int i = 0; i < 3; ++i) {
    if (!inflight[i]) continue;
    io_uring_sqe* sqe = reactor_->GetSqe(id_, kOpCancel, 0);
    io_uring_prep_cancel64(sqe, UserData::Encode(id_, ops[i], 0), 0);
  }
  // Close() may run inside the queue's own callbacks: finish from a fresh stack frame.
  reactor_->Post([this] { MaybeFinishClose(); });
}

void TcpConnection::MaybeFinishClose() {
  if (state_ != State::kClosing) return;
  if (connect_inflight_ || send_inflight_ || recv_inflight_) return;
  fd_.reset();
  SetState(State::kClosed);
  // Every buffer is ours again: fail the commands that never completed.
  queue_.FailOutstanding(-ECONNABORTED);
  observer_->OnConnectionClosed(this, close_reason_);
}

}  // namespace nvmf_ublk::io
