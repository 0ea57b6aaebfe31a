// The reactor pool (DESIGN.md §1): one control reactor (admin queues, timers, discovery) and R I/O
// reactors, each on its own thread; plus a blocking façade over a Controller for tools and tests.
#ifndef NVMF_UBLK_IO_ENGINE_H_
#define NVMF_UBLK_IO_ENGINE_H_

#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "io/controller.h"
#include "io/io_request.h"
#include "io/reactor.h"

namespace nvmf_ublk::io {

class Engine {
 public:
  // Starts 1 + `io_reactors` threads (io_reactors >= 1).
  // `poll_ns`: the I/O reactors look for completions this long before they sleep (Reactor::
  // Options::poll_ns); 0: they sleep at once.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(int io_reactors, int64_t poll_ns = 0);
  ~Engine();

  Reactor* control() const { return control_.get(); }
  Reactor* io(size_t i) const { return io_[i % io_.size()].get(); }
  size_t io_count() const { return io_.size(); }
  std::vector<Reactor*> io_reactors() const;

  // Runs `fn` on reactor `r` and waits for its result. Never call from a reactor thread.
  template <typename Fn>
  static auto RunOn(Reactor* r, Fn fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto fut = task.get_future();
    r->Post([&task] { task(); });
    return fut.get();
  }

 private:
  Engine() = default;
  std::unique_ptr<Reactor> control_;
  std::vector<std::unique_ptr<Reactor>> io_;
};

// Blocking use of one controller: connect, wait until live, run I/O and admin commands, read the
// discovery log, watch state changes and asynchronous events, disconnect. For the CLI's discover,
// tools and tests; the data path proper is asynchronous (IoQueue::Submit on the queue's reactor).
// Never call it from a reactor thread.
class SyncController : private ControllerListener {
 public:
  // Connects and waits until the controller is live, or returns why it could not be.
  static absl::StatusOr<std::unique_ptr<SyncController>> Connect(Engine* engine,
                                                                 ControllerOptions options);
  // Disconnects (if not done yet) and destroys the controller on the control reactor.
  ~SyncController() override;

  Controller* controller() const { return ctrl_.get(); }
  Engine* engine() const { return engine_; }

  // Runs one prepared request on I/O queue `index` and waits for it.
  IoResult Io(size_t index, IoRequest* req);
  // Posts the submission of `req` (its callback set) to the queue's reactor.
  void Submit(size_t index, IoRequest* req);
  // Runs one admin command and waits for it.
  IoResult Admin(const nvme::Sqe& sqe, void* data, uint32_t len);
  // Discovery controllers: the whole log.
  absl::StatusOr<std::vector<nvme::DiscoveryEntry>> DiscoveryLog();

  int state() const;
  absl::Status last_reason() const;
  // Every state entered, in order; how many times it became live (1 after Connect).
  std::vector<int> history() const;
  uint32_t times_live() const;
  // Controller::reconnects(), read on the control reactor.
  uint32_t reconnects() const;
  std::vector<nvme::AsyncEvent> events() const;
  // Wait (up to `timeout_ns`) for a state, for the n-th time live, for n asynchronous events.
  bool WaitState(int state, int64_t timeout_ns);
  bool WaitLive(uint32_t n, int64_t timeout_ns);
  bool WaitEvents(size_t n, int64_t timeout_ns);

  // Orderly disconnect (CC.SHN); waits until deleted. Idempotent.
  void Disconnect();

 protected:
  explicit SyncController(Engine* engine) : engine_(engine) {}
  // Creates and starts the controller, then waits until it is live or deleted.
  absl::Status StartAndWait(ControllerOptions options);

 private:
  void OnControllerState(Controller* ctrl, int state, const absl::Status& why) override;
  void OnAsyncEvent(Controller* ctrl, const nvme::AsyncEvent& event) override;

  Engine* engine_;
  std::unique_ptr<Controller> ctrl_;
  bool disconnected_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int state_ = Controller::kNew;
  uint32_t times_live_ = 0;
  std::vector<int> history_;
  std::vector<nvme::AsyncEvent> events_;
  absl::Status last_reason_;
};

}  // namespace nvmf_ublk::io

#endif  // NVMF_UBLK_IO_ENGINE_H_
