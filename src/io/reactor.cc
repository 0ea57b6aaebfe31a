#include "io/reactor.h"

#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"

namespace nvmf_ublk::io {
namespace {
thread_local Reactor* current_reactor = nullptr;
}  // namespace

Reactor* Reactor::Current() { return current_reactor; }

Reactor::Reactor(Options options) : options_(std::move(options)) {
  wake_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  NCHECK(wake_fd_.valid()) << "eventfd: " << strerror(errno);
  slots_.resize(1);  // slot 0 is the reactor itself (wake-ups)
}

Reactor::~Reactor() {
  Stop();
  Join();
  if (ring_ready_) io_uring_queue_exit(&ring_);
}

absl::Status Reactor::Init() {
  if (ring_ready_) return absl::OkStatus();
  // Newest first: DEFER_TASKRUN runs completion work only when we wait, on our thread (6.1+).
  const unsigned attempts[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      0,
  };
  int rc = -EINVAL;
  for (unsigned flags : attempts) {
    io_uring_params params;
    std::memset(&params, 0, sizeof(params));
    params.flags = flags | IORING_SETUP_CLAMP;
    rc = io_uring_queue_init_params(options_.entries, &ring_, &params);
    if (rc == 0) {
      setup_flags_ = flags;
      break;
    }
    if (rc != -EINVAL) break;
  }
  if (rc != 0) return ErrnoToStatus(rc, "io_uring_queue_init (" + options_.name + ")");
  ring_ready_ = true;
  owner_ = std::this_thread::get_id();
  current_reactor = this;
  ArmWake();
  NLOG(DEBUG) << options_.name << ": io_uring ready, setup flags 0x" << std::hex << setup_flags_;
  return absl::OkStatus();
}

absl::Status Reactor::StartThread() {
  std::promise<absl::Status> ready;
  auto fut = ready.get_future();
  thread_ = std::thread([this, &ready] {
    absl::Status s = Init();
    ready.set_value(s);
    if (s.ok()) Run().IgnoreError();
  });
  absl::Status s = fut.get();
  if (!s.ok()) Join();
  return s;
}

void Reactor::Join() {
  if (thread_.joinable()) thread_.join();
}

void Reactor::Stop() {
  stop_.store(true);
  const uint64_t one = 1;
  ssize_t unused = ::write(wake_fd_.get(), &one, sizeof(one));
  (void)unused;
}

absl::Status Reactor::Run() {
  RETURN_IF_ERROR(Init());
  while (!stop_.load(std::memory_order_relaxed)) RunOnce(-1);
  // Last chance for posted work (e.g. teardown requests) to run.
  RunPosted();
  RunFlushes();
  io_uring_submit(&ring_);
  return absl::OkStatus();
}

HandlerId Reactor::Register(CompletionHandler* handler) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.handler = handler;
  s.gen = static_cast<uint16_t>(s.gen + 1 == 0 ? 1 : s.gen + 1);
  return HandlerId{slot, s.gen};
}

void Reactor::Unregister(HandlerId id) {
  if (id.slot == 0 || id.slot >= slots_.size()) return;
  Slot& s = slots_[id.slot];
  if (s.gen != id.gen || s.handler == nullptr) return;
  s.handler = nullptr;
  free_slots_.push_back(id.slot);
}

io_uring_sqe* Reactor::GetSqe(HandlerId id, uint8_t op, uint16_t tag) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  io_uring_sqe_set_data64(sqe, UserData::Encode(id, op, tag));
  return sqe;
}

void Reactor::ArmWake() {
  io_uring_sqe* sqe = GetSqe(HandlerId{0, 0}, kOpWake, 0);
  io_uring_prep_read(sqe, wake_fd_.get(), &wake_buf_, sizeof(wake_buf_), 0);
}

Reactor::TimerId Reactor::AddTimer(int64_t deadline_ns, std::function<void()> fn) {
  const TimerId id = next_timer_id_++;
  timers_.emplace(id, std::move(fn));
  timer_heap_.push(TimerEntry{deadline_ns, id});
  return id;
}

Reactor::TimerId Reactor::AddTimerAfter(int64_t delay_ns, std::function<void()> fn) {
  return AddTimer(MonotonicNanos() + delay_ns, std::move(fn));
}

void Reactor::CancelTimer(TimerId id) { timers_.erase(id); }

int64_t Reactor::NextTimerDeadline() {
  while (!timer_heap_.empty() && timers_.count(timer_heap_.top().id) == 0) timer_heap_.pop();
  return timer_heap_.empty() ? -1 : timer_heap_.top().deadline;
}

void Reactor::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    posted_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  ssize_t unused = ::write(wake_fd_.get(), &one, sizeof(one));
  (void)unused;
}

void Reactor::RequestFlush(Flushable* f) {
  if (f->flush_requested_) return;
  f->flush_requested_ = true;
  flushes_.push_back(f);
}

void Reactor::CancelFlush(Flushable* f) {
  if (!f->flush_requested_) return;
  f->flush_requested_ = false;
  flushes_.erase(std::remove(flushes_.begin(), flushes_.end(), f), flushes_.end());
}

void Reactor::RunFlushes() {
  // Flush() may request more flushes (of others); loop until quiet.
  while (!flushes_.empty()) {
    std::vector<Flushable*> batch;
    batch.swap(flushes_);
    for (Flushable* f : batch) {
      f->flush_requested_ = false;
      f->Flush();
    }
  }
}

void Reactor::RunOnce(int64_t max_wait_ns) {
  NCHECK(ring_ready_) << options_.name << ": RunOnce before Init";
  ++turns_;
  RunPosted();
  RunFlushes();
  int64_t wait = deferred_.empty() ? max_wait_ns : 0;
  const int64_t deadline = NextTimerDeadline();
  if (deadline >= 0) {
    const int64_t until = std::max<int64_t>(0, deadline - MonotonicNanos());
    wait = wait < 0 ? until : std::min(wait, until);
  }
  if (options_.poll_ns > 0 && wait != 0) {
    // Polling: submit, then reap (each io_uring_get_events runs the ring's deferred work) until
    // a completion is there or the poll time (or the next timer) is up; sleep only after that.
    const int64_t start = MonotonicNanos();
    const int64_t limit = wait > 0 ? std::min(options_.poll_ns, wait) : options_.poll_ns;
    io_uring_submit(&ring_);
    int64_t spent = 0;
    while (io_uring_cq_ready(&ring_) == 0 && spent < limit) {
      io_uring_get_events(&ring_);
      spent = MonotonicNanos() - start;
    }
    if (io_uring_cq_ready(&ring_) > 0) {
      wait = 0;
    } else if (wait > 0) {
      wait = std::max<int64_t>(0, wait - spent);
    }
  }
  io_uring_cqe* cqe = nullptr;
  if (wait == 0 && io_uring_cq_ready(&ring_) > 0) {
    io_uring_submit(&ring_);  // what handlers prepared meanwhile; nothing to wait for
  } else if (wait < 0) {
    io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
  } else {
    __kernel_timespec ts;
    ts.tv_sec = wait / 1'000'000'000;
    ts.tv_nsec = wait % 1'000'000'000;
    io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  HandleCqes();
  RunTimers();
  RunPosted();
}

void Reactor::Dispatch(uint64_t data, int32_t res, uint32_t flags) {
  const UserData ud = UserData::Decode(data);
  if (ud.slot == 0) {
    if (ud.op == kOpWake) ArmWake();
    return;
  }
  if (ud.slot >= slots_.size()) return;
  const Slot& s = slots_[ud.slot];
  if (s.handler == nullptr || s.gen != ud.gen) return;  // stale: handler gone
  s.handler->OnCompletion(ud.op, ud.tag, res, flags);
}

void Reactor::HandleCqes() {
  if (!deferred_.empty()) {
    std::vector<DeferredCqe> batch;
    batch.swap(deferred_);
    for (const DeferredCqe& d : batch) Dispatch(d.data, d.res, d.flags);
  }
  // Handlers may prepare SQEs (and even submit when the SQ fills), which can reap more CQEs: take
  // a snapshot of what is ready, one CQE at a time.
  io_uring_cqe* cqe;
  while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
    const uint64_t data = io_uring_cqe_get_data64(cqe);
    const int32_t res = cqe->res;
    const uint32_t flags = cqe->flags;
    io_uring_cqe_seen(&ring_, cqe);
    Dispatch(data, res, flags);
  }
}

void Reactor::DrainHandler(HandlerId id, const std::function<bool()>& busy) {
  NCHECK(InReactorThread()) << options_.name << ": DrainHandler off the reactor thread";
  while (busy()) {
    __kernel_timespec ts{0, 10'000'000};
    io_uring_cqe* cqe = nullptr;
    io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
      const uint64_t data = io_uring_cqe_get_data64(cqe);
      const int32_t res = cqe->res;
      const uint32_t flags = cqe->flags;
      io_uring_cqe_seen(&ring_, cqe);
      const UserData ud = UserData::Decode(data);
      if (ud.slot == id.slot && ud.gen == id.gen) {
        Dispatch(data, res, flags);
      } else {
        deferred_.push_back(DeferredCqe{data, res, flags});
      }
    }
  }
}

void Reactor::RunTimers() {
  const int64_t now = MonotonicNanos();
  while (true) {
    const int64_t deadline = NextTimerDeadline();
    if (deadline < 0 || deadline > now) break;
    const TimerId id = timer_heap_.top().id;
    timer_heap_.pop();
    auto it = timers_.find(id);
    std::function<void()> fn = std::move(it->second);
    timers_.erase(it);
    fn();
  }
}

void Reactor::RunPosted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

}  // namespace nvmf_ublk::io
