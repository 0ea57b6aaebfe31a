// One io_uring per thread: the event loop every transport object runs on.
//
// Contract:
// - All ring access (GetSqe, Register, timers) happens on the reactor's own thread. Other threads
//   talk to it only through Post(), which is thread-safe and wakes the loop.
// - Every SQE carries a typed user_data (handler slot, handler generation, op, tag; DESIGN.md
// §8.7):
//   a completion for a handler that has been unregistered (or whose slot was reused) is dropped,
//   never delivered through a dangling pointer.
// - One io_uring_submit_and_wait_timeout per loop turn: SQEs prepared while handling a batch of
//   completions (and by flush hooks, which run last) go to the kernel together.
// - Ring setup tries SINGLE_ISSUER|DEFER_TASKRUN (6.1+), then COOP_TASKRUN, then plain, so it works
//   on every kernel the project supports.
#ifndef NVMF_UBLK_IO_REACTOR_H_
#define NVMF_UBLK_IO_REACTOR_H_

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace nvmf_ublk::io {

// Receives the completions of the SQEs it prepared. `op` and `tag` are the values given to GetSqe.
class CompletionHandler {
 public:
  virtual ~CompletionHandler() = default;
  virtual void OnCompletion(uint8_t op, uint16_t tag, int32_t res, uint32_t flags) = 0;
};

// A handler's registration: slot index and generation.
struct HandlerId {
  uint32_t slot = 0;
  uint16_t gen = 0;
  bool valid() const { return gen != 0; }
};

// user_data layout: slot (bits 63..40), generation (39..24), op (23..16), tag (15..0).
struct UserData {
  uint32_t slot;
  uint16_t gen;
  uint8_t op;
  uint16_t tag;
  static uint64_t Encode(HandlerId id, uint8_t op, uint16_t tag) {
    return (uint64_t{id.slot} << 40) | (uint64_t{id.gen} << 24) | (uint64_t{op} << 16) | tag;
  }
  static UserData Decode(uint64_t v) {
    return UserData{static_cast<uint32_t>(v >> 40), static_cast<uint16_t>(v >> 24),
                    static_cast<uint8_t>(v >> 16), static_cast<uint16_t>(v)};
  }
};

// Something with buffered output to hand to the kernel before the loop sleeps (a connection's send
// queue). Flush() runs on the reactor thread at the end of the turn in which RequestFlush was
// called.
class Flushable {
 public:
  virtual ~Flushable() = default;
  virtual void Flush() = 0;

 private:
  friend class Reactor;
  bool flush_requested_ = false;
};

class Reactor {
 public:
  struct Options {
    unsigned entries = 512;
    std::string name = "reactor";
    // Before sleeping for completions, look for them for up to this long (0: never): lower
    // latency for a core's worth of CPU while it waits (nvmf-ublkd/nvmf-perf --poll-us).
    int64_t poll_ns = 0;
  };
  using TimerId = uint64_t;

  explicit Reactor(Options options);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Creates the ring on the calling thread, which becomes the reactor's thread. Run()/RunOnce()
  // must then be called from this thread only. Idempotent.
  absl::Status Init();

  // Runs until Stop(). Calls Init() if needed.
  absl::Status Run();
  // One loop turn: submits, waits up to `max_wait_ns` (or until the next timer) for a completion,
  // handles everything ready. For tests and for threads driving the loop themselves.
  void RunOnce(int64_t max_wait_ns);
  // Thread-safe; Run() returns after the current turn.
  void Stop();

  // Starts a thread that runs Init()+Run(). Returns after Init() finished. Join with Join().
  absl::Status StartThread();
  void Join();

  bool InReactorThread() const { return std::this_thread::get_id() == owner_; }
  // The reactor whose thread is calling (after its Init()), or null.
  static Reactor* Current();

  HandlerId Register(CompletionHandler* handler);
  void Unregister(HandlerId id);

  // Returns an SQE tagged for `id`/`op`/`tag`, submitting first if the SQ is full. Never null.
  io_uring_sqe* GetSqe(HandlerId id, uint8_t op, uint16_t tag);

  // Runs `fn` on the reactor thread at (or soon after) CLOCK_MONOTONIC `deadline_ns`.
  TimerId AddTimer(int64_t deadline_ns, std::function<void()> fn);
  TimerId AddTimerAfter(int64_t delay_ns, std::function<void()> fn);
  void CancelTimer(TimerId id);

  // Thread-safe: runs `fn` on the reactor thread during its next turn.
  void Post(std::function<void()> fn);

  // Runs only `id`'s completions until busy() is false, keeping every other completion for the
  // next turn (no timers, posted work or flushes run meanwhile). For a handler that must not be
  // freed while the kernel still owns its buffers. Reactor thread only.
  void DrainHandler(HandlerId id, const std::function<bool()>& busy);

  void RequestFlush(Flushable* f);
  // Forgets a pending flush request (call from the Flushable's destructor).
  void CancelFlush(Flushable* f);

  const std::string& name() const { return options_.name; }
  // Which setup flags the ring got (for logs and tests).
  unsigned setup_flags() const { return setup_flags_; }
  uint64_t turns() const { return turns_; }

 private:
  struct Slot {
    CompletionHandler* handler = nullptr;
    uint16_t gen = 0;
  };
  struct TimerEntry {
    int64_t deadline;
    TimerId id;
    bool operator>(const TimerEntry& o) const { return deadline > o.deadline; }
  };
  enum : uint8_t { kOpWake = 1 };

  void ArmWake();
  void HandleCqes();
  void Dispatch(uint64_t data, int32_t res, uint32_t flags);
  void RunTimers();
  void RunPosted();
  void RunFlushes();
  int64_t NextTimerDeadline();

  Options options_;
  io_uring ring_{};
  bool ring_ready_ = false;
  unsigned setup_flags_ = 0;
  std::thread::id owner_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  uint64_t turns_ = 0;

  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;

  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timer_heap_;
  std::unordered_map<TimerId, std::function<void()>> timers_;
  TimerId next_timer_id_ = 1;

  UniqueFd wake_fd_;
  uint64_t wake_buf_ = 0;
  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by post_mu_
  std::vector<Flushable*> flushes_;
  struct DeferredCqe {
    uint64_t data;
    int32_t res;
    uint32_t flags;
  };
  std::vector<DeferredCqe> deferred_;  // held back by DrainHandler, dispatched next turn
};

}  // namespace nvmf_ublk::io

#endif  // NVMF_UBLK_IO_REACTOR_H_
