#include "io/engine.h"

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/status.h"

namespace nvmf_ublk::io {

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(int io_reactors, int64_t poll_ns) {
  if (io_reactors < 1) return absl::InvalidArgumentError("need at least one I/O reactor");
  std::unique_ptr<Engine> e(new Engine());
  e->control_ = std::make_unique<Reactor>(Reactor::Options{512, "control"});
  RETURN_IF_ERROR(e->control_->StartThread());
  for (int i = 0; i < io_reactors; ++i) {
    auto r = std::make_unique<Reactor>(Reactor::Options{1024, absl::StrCat("io", i), poll_ns});
    RETURN_IF_ERROR(r->StartThread());
    e->io_.push_back(std::move(r));
  }
  return e;
}

Engine::~Engine() {
  for (auto& r : io_) r->Stop();
  if (control_) control_->Stop();
  for (auto& r : io_) r->Join();
  if (control_) control_->Join();
}

std::vector<Reactor*> Engine::io_reactors() const {
  std::vector<Reactor*> out;
  for (const auto& r : io_) out.push_back(r.get());
  return out;
}

absl::StatusOr<std::unique_ptr<SyncController>> SyncController::Connect(Engine* engine,
                                                                        ControllerOptions options) {
  std::unique_ptr<SyncController> s(new SyncController(engine));
  RETURN_IF_ERROR(s->StartAndWait(std::move(options)));
  return s;
}

absl::Status SyncController::StartAndWait(ControllerOptions options) {
  absl::Status started = Engine::RunOn(engine_->control(), [&] {
    ctrl_ =
        std::make_unique<Controller>(std::move(options), engine_->control(), engine_->io_reactors(),
                                     static_cast<ControllerListener*>(this));
    return ctrl_->Start();
  });
  if (!started.ok()) return started;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return state_ == Controller::kLive || state_ == Controller::kDeleted; });
  if (state_ == Controller::kLive) return absl::OkStatus();
  return last_reason_.ok() ? absl::UnavailableError("controller was deleted") : last_reason_;
}

SyncController::~SyncController() {
  Disconnect();
  Engine::RunOn(engine_->control(), [&] {
    ctrl_.reset();
    return 0;
  });
}

void SyncController::OnControllerState(Controller*, int state, const absl::Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = state;
  history_.push_back(state);
  if (state == Controller::kLive) ++times_live_;
  if (!why.ok()) last_reason_ = why;
  cv_.notify_all();
}

void SyncController::OnAsyncEvent(Controller*, const nvme::AsyncEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  events_.push_back(event);
  cv_.notify_all();
}

int SyncController::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

absl::Status SyncController::last_reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_reason_;
}

std::vector<int> SyncController::history() const {
  std::lock_guard<std::mutex> lock(mu_);
  return history_;
}

uint32_t SyncController::times_live() const {
  std::lock_guard<std::mutex> lock(mu_);
  return times_live_;
}

uint32_t SyncController::reconnects() const {
  return Engine::RunOn(engine_->control(), [&] { return ctrl_->reconnects(); });
}

std::vector<nvme::AsyncEvent> SyncController::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

bool SyncController::WaitState(int state, int64_t timeout_ns) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return state_ == state; });
}

bool SyncController::WaitLive(uint32_t n, int64_t timeout_ns) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                      [&] { return state_ == Controller::kLive && times_live_ >= n; });
}

bool SyncController::WaitEvents(size_t n, int64_t timeout_ns) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                      [&] { return events_.size() >= n; });
}

void SyncController::Disconnect() {
  if (!ctrl_ || disconnected_) return;
  disconnected_ = true;
  std::promise<void> done;
  engine_->control()->Post([&] { ctrl_->Shutdown([&] { done.set_value(); }); });
  done.get_future().wait();
}

void SyncController::Submit(size_t index, IoRequest* req) {
  IoQueue* q = ctrl_->io_queue(index);
  if (q == nullptr) {
    req->callback->OnIoDone(req, IoResult{-ENODEV});
    return;
  }
  q->reactor()->Post([q, req] { q->Submit(req); });
}

IoResult SyncController::Io(size_t index, IoRequest* req) {
  struct Waiter : IoCallback {
    std::promise<IoResult> p;
    void OnIoDone(IoRequest*, const IoResult& r) override { p.set_value(r); }
  } waiter;
  auto fut = waiter.p.get_future();
  req->callback = &waiter;
  Submit(index, req);
  return fut.get();
}

IoResult SyncController::Admin(const nvme::Sqe& sqe, void* data, uint32_t len) {
  std::promise<IoResult> p;
  auto fut = p.get_future();
  engine_->control()->Post(
      [&] { ctrl_->SubmitAdmin(sqe, data, len, [&p](const IoResult& r) { p.set_value(r); }); });
  return fut.get();
}

absl::StatusOr<std::vector<nvme::DiscoveryEntry>> SyncController::DiscoveryLog() {
  std::promise<absl::StatusOr<std::vector<nvme::DiscoveryEntry>>> p;
  auto fut = p.get_future();
  engine_->control()->Post([&] {
    ctrl_->ReadDiscoveryLog(
        [&p](absl::StatusOr<std::vector<nvme::DiscoveryEntry>> r) { p.set_value(std::move(r)); });
  });
  return fut.get();
}

}  // namespace nvmf_ublk::io
