#include "multipath/path.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace nvmf_ublk::multipath {

Path::Path(uint16_t queues)
    : queues_(queues == 0 ? 1 : queues), stats_(new PathQueueStats[queues_]) {}

Path::Totals Path::totals() const {
  Totals t;
  int64_t latency_sum = 0;
  int samples = 0;
  for (uint16_t q = 0; q < queues_; ++q) {
    const PathQueueStats& s = stats_[q];
    t.in_flight += s.in_flight.load(std::memory_order_relaxed);
    t.ios += s.ios.load(std::memory_order_relaxed);
    t.errors += s.errors.load(std::memory_order_relaxed);
    const int64_t e = s.ewma_ns.load(std::memory_order_relaxed);
    if (e > 0) {
      latency_sum += e;
      ++samples;
    }
  }
  if (samples > 0) t.latency_ns = latency_sum / samples;
  return t;
}

ControllerPath::ControllerPath(io::Controller* ctrl, uint32_t nsid, uint16_t queues)
    : Path(queues),
      ctrl_(ctrl),
      nsid_(nsid),
      name_(absl::StrCat(ctrl->name(), "/ns", nsid)),
      cell_(ctrl->ana_cell(nsid)) {}

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

int64_t ControllerPath::RetryDelayNs(uint8_t crd) const { return ctrl_->RetryDelayNs(crd); }

void ControllerPath::OnPathError() { ctrl_->RequestAnaRefresh(nsid_); }

int64_t ControllerPath::GhostHoldNs() const { return ctrl_->ghost_hold_ns(); }

int64_t ControllerPath::FastFailNs() const {
  const int s = ctrl_->options().fast_io_fail_tmo_s;
  return s < 0 ? -1 : int64_t{s} * 1'000'000'000;
}

int64_t ControllerPath::LossTimeoutNs() const {
  const int s = ctrl_->options().ctrl_loss_tmo_s;
  return s < 0 ? -1 : int64_t{s} * 1'000'000'000;
}

}  // namespace nvmf_ublk::multipath
