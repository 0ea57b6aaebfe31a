#include "io/io_queue.h"

#include <cerrno>

#include "absl/strings/str_format.h"
#include "base/clock.h"
#include "base/log.h"
#include "io/controller.h"

namespace nvmf_ublk::io {
namespace {
constexpr int64_t kTickNs = 1'000'000'000;
}  // namespace

IoQueue::IoQueue(Controller* ctrl, uint16_t qid, Reactor* reactor, int64_t io_timeout_ns,
                 int64_t abort_timeout_ns)
    : ctrl_(ctrl),
      qid_(qid),
      reactor_(reactor),
      io_timeout_ns_(io_timeout_ns),
      abort_timeout_ns_(abort_timeout_ns) {}

IoQueue::~IoQueue() {
  if (tick_) reactor_->CancelTimer(tick_);
  FailWaiting(-ENODEV);
}

void IoQueue::Enqueue(IoRequest* req) {
  req->next = nullptr;
  if (wait_tail_) {
    wait_tail_->next = req;
  } else {
    wait_head_ = req;
  }
  wait_tail_ = req;
  ++waiting_;
}

void IoQueue::Submit(IoRequest* req) {
  ++submitted_;
  switch (mode_) {
    case Mode::kFailFast:
      Complete(req, IoResult{-ENOTCONN});
      return;
    case Mode::kDeleted:
      Complete(req, IoResult{-ENODEV});
      return;
    case Mode::kPark:
      Enqueue(req);
      return;
    case Mode::kLive:
      break;
  }
  if (wait_head_ != nullptr || !conn_ || !conn_->CanSubmit()) {
    Enqueue(req);
    return;
  }
  req->submit_ns = MonotonicNanos();
  req->abort_requested = false;
  const int rc = conn_->Submit(req->sqe, req->data, req->len, reinterpret_cast<uint64_t>(req));
  if (rc >= 0) {
    req->cid = static_cast<uint16_t>(rc);
    ArmTick();
  } else if (rc == -EAGAIN || rc == -ENOTCONN) {
    Enqueue(req);
  } else {
    Complete(req, IoResult{rc});
  }
}

void IoQueue::Drain() {
  while (wait_head_ != nullptr && mode_ == Mode::kLive && conn_ && conn_->CanSubmit()) {
    IoRequest* req = wait_head_;
    wait_head_ = req->next;
    if (wait_head_ == nullptr) wait_tail_ = nullptr;
    --waiting_;
    req->submit_ns = MonotonicNanos();
    req->abort_requested = false;
    const int rc = conn_->Submit(req->sqe, req->data, req->len, reinterpret_cast<uint64_t>(req));
    if (rc >= 0) {
      req->cid = static_cast<uint16_t>(rc);
      ArmTick();
    } else {
      Complete(req, IoResult{rc});
    }
  }
}

void IoQueue::FailWaiting(int err) {
  IoRequest* req = wait_head_;
  wait_head_ = wait_tail_ = nullptr;
  waiting_ = 0;
  while (req != nullptr) {
    IoRequest* next = req->next;
    Complete(req, IoResult{err});
    req = next;
  }
}

void IoQueue::Complete(IoRequest* req, const IoResult& r) {
  ++completed_;
  req->callback->OnIoDone(req, r);
}

void IoQueue::SetMode(Mode mode) {
  mode_ = mode;
  if (mode == Mode::kFailFast) FailWaiting(-ENOTCONN);
  if (mode == Mode::kDeleted) FailWaiting(-ENODEV);
  if (mode == Mode::kLive) Drain();
}

void IoQueue::Connect(ConnectionOptions options, uint64_t epoch) {
  epoch_ = epoch;
  dead_.reset();
  conn_ = std::make_unique<TcpConnection>(reactor_, std::move(options),
                                          static_cast<ConnectionObserver*>(this));
  conn_->Start();
}

void IoQueue::Close(const absl::Status& why) {
  if (conn_) conn_->Close(why);
}

void IoQueue::ArmTick() {
  if (!tick_) tick_ = reactor_->AddTimerAfter(kTickNs, [this] { Tick(); });
}

void IoQueue::OnConnectionLive(TcpConnection*) {
  // Tell the controller; it switches every queue to kLive once all are up.
  ctrl_->PostIoQueueLive(qid_, epoch_);
}

void IoQueue::OnCommandDone(TcpConnection*, uint64_t cookie, const nvme::Cqe& cqe, int error) {
  auto* req = reinterpret_cast<IoRequest*>(cookie);
  if (error == 0)
    answers_.store(answers_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  IoResult r;
  r.err = error;
  r.status = static_cast<uint16_t>(cqe.status.get() >> 1);
  r.dw0 = cqe.dw0.get();
  r.dw1 = cqe.dw1.get();
  Complete(req, r);
  Drain();
}

void IoQueue::OnConnectionClosing(TcpConnection* conn) {
  // From now on the queue is not live: a multipath head re-issuing the commands this connection
  // fails (or sending new ones) picks another path instead of parking them here.
  if (conn == conn_.get() && mode_ == Mode::kLive) mode_ = Mode::kPark;
}

void IoQueue::OnConnectionClosed(TcpConnection* conn, const absl::Status& why) {
  if (conn != conn_.get()) return;
  if (tick_) {
    reactor_->CancelTimer(tick_);
    tick_ = 0;
  }
  // Destroy the connection outside its own callback.
  dead_ = std::move(conn_);
  if (mode_ == Mode::kLive) mode_ = Mode::kPark;
  ctrl_->PostIoQueueClosed(qid_, epoch_, why);
}

void IoQueue::Tick() {
  tick_ = 0;
  // Only while commands are out: an idle queue has no timer (no wakeups); the next submission
  // arms it again.
  if (!conn_ || !conn_->live() || conn_->queue().outstanding() == 0) return;
  ArmTick();
  const int64_t now = MonotonicNanos();
  bool reset = false;
  std::string what;
  conn_->queue().ForEachOutstanding([&](uint16_t cid, uint64_t cookie, const nvme::Sqe& sqe) {
    auto* req = reinterpret_cast<IoRequest*>(cookie);
    const int64_t age = now - req->submit_ns;
    if (age <= io_timeout_ns_) return;
    if (!req->abort_requested) {
      req->abort_requested = true;
      ctrl_->PostIoTimeout(qid_, cid,
                           absl::StrFormat("%s (queue %u, CID 0x%04x) timed out after %.1f s",
                                           nvme::CommandName(sqe, false), qid_, cid,
                                           static_cast<double>(age) / 1e9));
    } else if (age > io_timeout_ns_ + abort_timeout_ns_ && !reset) {
      reset = true;
      what = absl::StrFormat(
          "%s (queue %u, CID 0x%04x) still outstanding %.1f s after its "
          "timeout and Abort",
          nvme::CommandName(sqe, false), qid_, cid, static_cast<double>(age) / 1e9);
    }
  });
  if (reset) conn_->Close(absl::DeadlineExceededError(what));
}

}  // namespace nvmf_ublk::io
