#include "multipath/path.h"

#include "absl/strings/str_cat.h"

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

void ControllerPath::Submit(uint16_t queue, io::IoRequest* req) {
  ctrl_->io_queue(queue)->Submit(req);
}

void ControllerPath::After(uint16_t queue, int64_t delay_ns, std::function<void()> fn) {
  ctrl_->io_queue(queue)->reactor()->AddTimerAfter(delay_ns, std::move(fn));
}

int64_t ControllerPath::RetryDelayNs(uint8_t crd) const {
  if (crd == 0 || crd > 3) return 0;
  return int64_t{ctrl_->info().crdt[crd - 1]} * 100'000'000;
}

}  // namespace nvmf_ublk::multipath
