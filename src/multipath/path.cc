#include "multipath/path.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace nvmf_ublk::multipath {

ControllerPath::ControllerPath(io::Controller* ctrl, uint32_t nsid)
    : ctrl_(ctrl), nsid_(nsid), name_(absl::StrCat(ctrl->name(), "/ns", nsid)) {}

Path::Usability ControllerPath::usability(uint16_t queue) const {
  io::IoQueue* q = ctrl_->io_queue(queue);
  if (q == nullptr) return Usability::kDown;
  switch (q->mode()) {
    case io::IoQueue::Mode::kLive:
      return Usability::kLive;
    case io::IoQueue::Mode::kPark:
      return Usability::kConnecting;
    case io::IoQueue::Mode::kFailFast:
    case io::IoQueue::Mode::kDeleted:
      return Usability::kDown;
  }
  return Usability::kDown;
}

namespace {

// Carries a request to an I/O queue of another reactor and its completion back: for a device with
// more hardware queues than the controller granted I/O queues (a recovered device whose target now
// grants fewer), where ublk queue q and I/O queue q % count sit on different reactors. One
// allocation and two posts per I/O: correct, and only in that degraded mapping.
class Hop final : public io::IoCallback {
 public:
  Hop(io::IoCallback* callback, io::Reactor* home) : callback_(callback), home_(home) {}
  void OnIoDone(io::IoRequest* req, const io::IoResult& result) override {
    req->callback = callback_;
    home_->Post([req, result, cb = callback_, self = this] {
      delete self;
      cb->OnIoDone(req, result);
    });
  }

 private:
  io::IoCallback* callback_;
  io::Reactor* home_;
};

}  // namespace

void ControllerPath::Submit(uint16_t queue, io::IoRequest* req) {
  io::IoQueue* q = ctrl_->io_queue(queue);
  io::Reactor* here = io::Reactor::Current();
  if (here == nullptr || here == q->reactor()) {
    q->Submit(req);
    return;
  }
  if (!hop_warned_.exchange(true)) {
    NLOG(WARNING) << name_ << ": ublk queue " << queue << " shares I/O queue " << q->qid()
                  << " of another reactor (fewer I/O queues than hardware queues): I/O hops "
                     "between threads";
  }
  req->callback = new Hop(req->callback, here);
  q->reactor()->Post([q, req] { q->Submit(req); });
}

void ControllerPath::After(uint16_t queue, int64_t delay_ns, std::function<void()> fn) {
  // The timer runs where the caller (the ublk queue's reactor) runs, whichever I/O queue serves it.
  io::Reactor* here = io::Reactor::Current();
  (here ? here : ctrl_->io_queue(queue)->reactor())->AddTimerAfter(delay_ns, std::move(fn));
}

int64_t ControllerPath::RetryDelayNs(uint8_t crd) const { return ctrl_->RetryDelayNs(crd); }

}  // namespace nvmf_ublk::multipath
