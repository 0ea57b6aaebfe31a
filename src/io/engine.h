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
  static absl::StatusOr<std::unique_ptr<Engine>> Create(int io_reactors);
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

// Blocking use of one controller: connect, wait until live, run I/O one request at a time,
// read the discovery log, disconnect. For the CLI's discover, tests and tools; the data path proper
// is asynchronous (IoQueue::Submit on the queue's reactor).
class SyncController final : private ControllerListener {
 public:
  // Connects and waits until the controller is live, or returns why it could not be.
  static absl::StatusOr<std::unique_ptr<SyncController>> Connect(Engine* engine,
                                                                 ControllerOptions options);
  ~SyncController() override;

  Controller* controller() const { return ctrl_.get(); }
  // Runs one prepared request on I/O queue `index` and waits for it.
  IoResult Io(size_t index, IoRequest* req);
  // Discovery controllers: the whole log.
  absl::StatusOr<std::vector<nvme::DiscoveryEntry>> DiscoveryLog();
  // Waits until the controller reaches `state` (e.g. after a reconnect), up to `timeout_ns`.
  bool WaitState(int state, int64_t timeout_ns);
  int state() const;
  // Orderly disconnect (CC.SHN); idempotent.
  void Disconnect();

 private:
  explicit SyncController(Engine* engine) : engine_(engine) {}
  void OnControllerState(Controller* ctrl, int state, const absl::Status& why) override;

  Engine* engine_;
  std::unique_ptr<Controller> ctrl_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int state_ = Controller::kNew;
  absl::Status last_reason_;
};

}  // namespace nvmf_ublk::io

#endif  // NVMF_UBLK_IO_ENGINE_H_
