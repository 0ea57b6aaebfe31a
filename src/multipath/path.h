// One path to a namespace: a controller (one association through one portal) and the NSID it
// uses for the namespace. The namespace head picks a path per I/O and submits on the I/O queue
// that runs on the caller's reactor (queue index = ublk hardware queue = reactor).
//
// What a head asks of a path, per I/O and lock-free: is its connection usable on this queue
// (usability), what ANA state its controller reports for the namespace (ana_state), is an ANA log
// re-read under way after a path error (ana_refreshing). Counters are per (path, queue): each is
// written only by that queue's reactor, so no cache line is shared by all reactors on every I/O.
#ifndef NVMF_UBLK_MULTIPATH_PATH_H_
#define NVMF_UBLK_MULTIPATH_PATH_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "io/controller.h"
#include "io/io_request.h"
#include "nvme/log_pages.h"

namespace nvmf_ublk::multipath {

// Counters of one path on one queue. Single writer (the queue's reactor: plain load + store, no
// read-modify-write), any reader (relaxed loads; a total may be a moment old).
struct alignas(64) PathQueueStats {
  std::atomic<uint32_t> in_flight{0};
  std::atomic<uint64_t> ios{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<int64_t> ewma_ns{0};    // service time, exponentially weighted (1/8), 0 = no sample
  std::atomic<int64_t> failed_ns{0};  // when a request last failed over from this path (0: never)
  static void Bump(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

class Path {
 public:
  enum class Usability {
    kLive,        // submit now
    kConnecting,  // will come back: I/O waits (at the head) until it does
    kDown,        // gone or failing fast: do not submit
  };
  explicit Path(uint16_t queues = 1);
  virtual ~Path() = default;
  virtual const std::string& name() const = 0;
  virtual uint32_t nsid() const = 0;
  // Reactor thread of `queue`.
  virtual Usability usability(uint16_t queue) const = 0;
  virtual void Submit(uint16_t queue, io::IoRequest* req) = 0;
  // CRDT[crd - 1] x 100 ms from Identify Controller (0 when unknown).
  virtual int64_t RetryDelayNs(uint8_t crd) const = 0;
  // ANA state of the namespace on this path (nvme::kAna*); optimized for a controller without
  // ANA reporting. Any thread.
  virtual uint8_t ana_state() const { return nvme::kAnaOptimized; }
  // True from a path error until the ANA log has been read again.
  virtual bool ana_refreshing() const { return false; }
  // A command failed with a path-related or ANA status: re-read the ANA log. Any thread.
  virtual void OnPathError() {}
  // How long a write that was in flight, unanswered, when this path's association died must wait
  // before it goes out again (TP 4129: KATO + CQT), 0 for no wait.
  virtual int64_t GhostHoldNs() const { return 0; }
  // fast_io_fail_tmo and ctrl_loss_tmo of the path's controller, -1 when off / forever.
  virtual int64_t FastFailNs() const { return -1; }
  virtual int64_t LossTimeoutNs() const { return -1; }

  // Queue `q`'s counters (q is taken modulo the count given at construction).
  PathQueueStats& queue_stats(uint16_t q) { return stats_[q % queues_]; }
  struct Totals {
    uint32_t in_flight = 0;
    uint64_t ios = 0;
    uint64_t errors = 0;
    int64_t latency_ns = 0;  // mean of the queues' recent service times (0: no sample)
  };
  Totals totals() const;

 private:
  uint16_t queues_;
  std::unique_ptr<PathQueueStats[]> stats_;
};

// A path over an io::Controller.
class ControllerPath final : public Path {
 public:
  ControllerPath(io::Controller* ctrl, uint32_t nsid, uint16_t queues = 1);
  const std::string& name() const override { return name_; }
  uint32_t nsid() const override { return nsid_; }
  Usability usability(uint16_t queue) const override;
  void Submit(uint16_t queue, io::IoRequest* req) override;
  int64_t RetryDelayNs(uint8_t crd) const override;
  uint8_t ana_state() const override { return cell_->state.load(std::memory_order_relaxed); }
  bool ana_refreshing() const override { return cell_->refreshing.load(std::memory_order_relaxed); }
  void OnPathError() override;
  int64_t GhostHoldNs() const override;
  int64_t FastFailNs() const override;
  int64_t LossTimeoutNs() const override;
  io::Controller* controller() const { return ctrl_; }

 private:
  io::Controller* ctrl_;
  uint32_t nsid_;
  std::string name_;
  std::shared_ptr<io::AnaCell> cell_;
  std::atomic<bool> hop_warned_{false};
};

}  // namespace nvmf_ublk::multipath

#endif  // NVMF_UBLK_MULTIPATH_PATH_H_
