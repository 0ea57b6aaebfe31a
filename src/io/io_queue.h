// One I/O queue of a controller: the TCP connection of queue `qid` on one I/O reactor, plus the
// requests waiting for it. Everything here runs on that reactor's thread (DESIGN.md §1: no locks
// and no cross-thread hand-off on the data path); the controller talks to it with posted messages.
//
// Submit() sends at once when the connection is live and has room; otherwise the request waits in
// FIFO order: for room (queue full), or for the controller to reconnect (mode kPark). In mode
// kFailFast (fast_io_fail_tmo expired) and kDeleted new and waiting requests fail at once with
// -ENOTCONN / -ENODEV. Completed commands go straight to the request's callback.
//
// Timeouts: a periodic check finds commands older than io_timeout; the controller sends an Abort
// for each; a command still outstanding abort_timeout later makes the queue close its connection
// (-> controller error recovery, command completes with -ECONNABORTED).
#ifndef NVMF_UBLK_IO_IO_QUEUE_H_
#define NVMF_UBLK_IO_IO_QUEUE_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "io/io_request.h"
#include "io/reactor.h"
#include "io/tcp_connection.h"

namespace nvmf_ublk::io {

class Controller;

class IoQueue final : private ConnectionObserver {
 public:
  enum class Mode { kPark, kLive, kFailFast, kDeleted };

  IoQueue(Controller* ctrl, uint16_t qid, Reactor* reactor, int64_t io_timeout_ns,
          int64_t abort_timeout_ns);
  ~IoQueue() override;

  // Reactor thread. Never fails synchronously: the result always comes through the callback.
  void Submit(IoRequest* req);

  // Controller messages (run on this queue's reactor).
  void Connect(ConnectionOptions options, uint64_t epoch);
  void Close(const absl::Status& why);
  void SetMode(Mode mode);

  uint16_t qid() const { return qid_; }
  // Any thread (a path checks it from the reactor of another ublk queue in degraded mappings).
  Mode mode() const { return mode_.load(std::memory_order_relaxed); }
  Reactor* reactor() const { return reactor_; }
  // Counters (reactor thread).
  uint64_t submitted() const { return submitted_; }
  uint64_t completed() const { return completed_; }
  uint32_t waiting() const { return waiting_; }
  // Commands the controller answered on this queue (any thread: the keep-alive logic reads it on
  // the admin reactor to tell a slow Keep Alive answer from a dead controller).
  uint64_t answers() const { return answers_.load(std::memory_order_relaxed); }

 private:
  void OnConnectionLive(TcpConnection* conn) override;
  void OnCommandDone(TcpConnection* conn, uint64_t cookie, const nvme::Cqe& cqe,
                     int error) override;
  void OnConnectionClosing(TcpConnection* conn) override;
  void OnConnectionClosed(TcpConnection* conn, const absl::Status& why) override;

  void Drain();
  void FailWaiting(int err);
  void Complete(IoRequest* req, const IoResult& r);
  void Tick();
  void ArmTick();  // the timeout check, 1 s from now, unless armed
  void Enqueue(IoRequest* req);

  Controller* ctrl_;
  uint16_t qid_;
  Reactor* reactor_;
  int64_t io_timeout_ns_;
  int64_t abort_timeout_ns_;
  std::atomic<Mode> mode_{Mode::kPark};
  uint64_t epoch_ = 0;
  std::unique_ptr<TcpConnection> conn_;
  std::unique_ptr<TcpConnection> dead_;  // closed connection, destroyed on the next Connect/dtor
  IoRequest* wait_head_ = nullptr;
  IoRequest* wait_tail_ = nullptr;
  uint32_t waiting_ = 0;
  uint64_t submitted_ = 0;
  uint64_t completed_ = 0;
  std::atomic<uint64_t> answers_{0};  // written by this reactor only
  Reactor::TimerId tick_ = 0;
};

}  // namespace nvmf_ublk::io

#endif  // NVMF_UBLK_IO_IO_QUEUE_H_
