// One NVMe/TCP connection (one queue of one association) driven by a Reactor.
//
//   Connecting --TCP up--> [Tls] --> Handshake (ICReq/ICResp/Connect) --Connect ok--> Live
//        \________________ any error / Close() ________________/  --> Closing --> Closed
//
// - Non-blocking connect; TCP_NODELAY; optional source address (host_traddr) and interface
//   (host_iface, SO_BINDTODEVICE). The whole handshake (TCP connect, ICResp, Connect) must finish
//   within `connect_timeout_ns`, or the connection closes with kDeadlineExceeded.
// - TLS (options.tls): before the ICReq, a TLS 1.3 handshake with the PSK (auth::TlsHandshake
//   over this connection's sends and receives), then the keys go to kernel TLS and everything
//   after is plain socket I/O as without TLS. A kernel without TLS, a handshake failure, or a
//   record that is not application data later (an alert) closes the connection with the reason.
// - One ordered send stream: at most one sendmsg in flight, each carrying every PDU ready at the
//   end of the loop turn (scatter-gather). One recv in flight; large C2HData payload is received
//   directly into the command's buffer.
// - Errors of any kind (socket, protocol, timeout, Close()) go through Close(), the connection's
//   error funnel: it cancels in-flight operations, waits for them, closes the socket, completes
//   every outstanding command with -ECONNABORTED, then reports OnConnectionClosed exactly once.
//   After a protocol error it first writes the H2CTermReq (after the send in flight and the rest
//   of a partly written PDU; reading and dropping meanwhile; at most 1 s), then shuts down.
//   Only after OnConnectionClosed may the owner destroy the connection; a connection destroyed
//   earlier cancels its operations and waits for them (Reactor::DrainHandler) before freeing.
#ifndef NVMF_UBLK_IO_TCP_CONNECTION_H_
#define NVMF_UBLK_IO_TCP_CONNECTION_H_

#include <sys/socket.h>
#include <sys/uio.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "auth/tls_handshake.h"
#include "base/unique_fd.h"
#include "io/address.h"
#include "io/reactor.h"
#include "tcp/host_queue.h"

namespace nvmf_ublk::io {

// The TLS PSK a connection uses: the identity it offers and the derived TLS PSK.
struct TlsOptions {
  std::string identity;
  auth::Bytes psk;
  auth::HashId hash = auth::HashId::kSha256;
  ~TlsOptions() { auth::Wipe(psk); }
};

struct ConnectionOptions {
  SocketAddress target;
  std::optional<SocketAddress> source;  // host_traddr
  std::string interface;                // host_iface
  int tos = -1;                         // IP_TOS / IPV6_TCLASS; -1: the system's default
  int64_t connect_timeout_ns = 10'000'000'000;
  std::shared_ptr<const TlsOptions> tls;  // null: plain TCP
  tcp::HostQueueOptions queue;
};

class TcpConnection;

class ConnectionObserver {
 public:
  virtual ~ConnectionObserver() = default;
  virtual void OnConnectionLive(TcpConnection* conn) = 0;
  // See tcp::HostQueueObserver::OnCommandDone.
  virtual void OnCommandDone(TcpConnection* conn, uint64_t cookie, const nvme::Cqe& cqe,
                             int error) = 0;
  // Close() has begun: no new command can be sent; those outstanding complete (with
  // -ECONNABORTED) before OnConnectionClosed. Called once, before any of them completes.
  virtual void OnConnectionClosing(TcpConnection*) {}
  // The connection is closed and every command has completed. `why` is OK for a Close(OkStatus()).
  virtual void OnConnectionClosed(TcpConnection* conn, const absl::Status& why) = 0;
};

class TcpConnection final : private CompletionHandler,
                            private Flushable,
                            private tcp::HostQueueObserver {
 public:
  enum class State { kIdle, kConnecting, kTls, kHandshake, kLive, kClosing, kClosed };
  static const char* ToString(State s);

  TcpConnection(Reactor* reactor, ConnectionOptions options, ConnectionObserver* observer);
  ~TcpConnection() override;
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  // Starts connecting; the outcome arrives through the observer. Reactor thread only.
  void Start();
  // Submits a command (see tcp::HostQueue::Submit); bytes go out at the end of this loop turn.
  int Submit(const nvme::Sqe& sqe, void* data, uint32_t len, uint64_t cookie);
  bool CanSubmit() const { return state_ == State::kLive && queue_.CanSubmit(); }
  // The error funnel. Idempotent; the first reason wins.
  void Close(const absl::Status& why);

  State state() const { return state_; }
  bool live() const { return state_ == State::kLive; }
  const tcp::HostQueue& queue() const { return queue_; }
  tcp::HostQueue& queue() { return queue_; }
  const std::string& name() const { return options_.queue.name; }
  Reactor* reactor() const { return reactor_; }

 private:
  enum Op : uint8_t { kOpConnect = 1, kOpSend, kOpRecv, kOpCancel };

  // CompletionHandler / Flushable / HostQueueObserver.
  void OnCompletion(uint8_t op, uint16_t tag, int32_t res, uint32_t flags) override;
  void Flush() override;
  void OnQueueLive(uint16_t cntlid) override;
  void OnCommandDone(uint64_t cookie, const nvme::Cqe& cqe, int error) override;
  void OnQueueFailed(const absl::Status& status) override;

  absl::Status OpenSocket();
  void ArmRecv();
  void OnConnected(int res);
  void OnSent(int res);
  void OnReceived(int res);
  // TLS: the handshake's bytes go out with SendTls; FinishTls hands the keys to the kernel and
  // starts the NVMe/TCP handshake.
  void StartTls();
  void SendTls();
  void FinishTls();
  void StartQueue();
  // One sendmsg of everything PendingSend() lists (no send may be in flight).
  void SendPending();
  void ContinueTermination(bool ok);
  void EndTermination();
  // Destructor path only: cancels every operation in flight and runs the reactor until they have
  // all completed, so the kernel never writes into freed memory.
  void DrainNow();
  void MaybeFinishClose();
  void SetState(State s);

  Reactor* reactor_;
  ConnectionOptions options_;
  ConnectionObserver* observer_;
  HandlerId id_;
  tcp::HostQueue queue_;
  State state_ = State::kIdle;
  UniqueFd fd_;
  absl::Status close_reason_;
  Reactor::TimerId handshake_timer_ = 0;
  Reactor::TimerId term_timer_ = 0;
  bool terminating_ = false;   // closing: writing the H2CTermReq before shutting down
  bool term_started_ = false;  // BeginTermination() done
  bool draining_ = false;      // destructor waits for in-flight operations

  bool connect_inflight_ = false;
  bool send_inflight_ = false;
  bool recv_inflight_ = false;
  bool recv_direct_ = false;
  msghdr msg_{};
  iovec iov_[64];
  std::vector<uint8_t> recv_buf_;
  std::unique_ptr<auth::TlsHandshake> tls_;
  auth::Bytes tls_out_;  // handshake bytes to send, from tls_out_sent_
  size_t tls_out_sent_ = 0;
  bool ktls_ = false;  // the socket's records are the kernel's
};

}  // namespace nvmf_ublk::io

#endif  // NVMF_UBLK_IO_TCP_CONNECTION_H_
