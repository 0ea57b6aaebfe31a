// A namespace head: one block device's worth of I/O, served over one or more paths to the same
// namespace (DESIGN.md §5). Implements ublk::BlockBackend.
//
// Each ublk I/O becomes one NVMe command on the chosen path's I/O queue of the same reactor (no
// cross-thread hand-off). The head owns the requeue list, not the path:
// - success: the ublk I/O completes with its byte count;
// - failover class (path-related or ANA status, connection lost, timeout, digest error, a path
//   that went away): the request comes back to the head and goes out again on the best usable
//   path at once. With no path usable now but one that may become usable (reconnecting, ANA
//   inaccessible or in transition, ANA log being re-read) it waits at the head, in order, and goes
//   out as soon as one is; it fails with -EIO when no path can come back, when it has waited
//   longer than every path's fast_io_fail_tmo (when all set one), or has been failing over for
//   longer than every path's ctrl_loss_tmo (when none is -1). Time bounds it, never a count; a
//   request that keeps failing over backs off (1 ms doubling to 1 s) so a path answering every
//   command with a path error costs no busy loop;
// - ghost writes (TP 4129): a write, write-zeroes or deallocate that was in flight, unanswered, on
//   an association that died is held for that path's KATO + CQT before it goes out again (the
//   subsystem may still execute the old command until then, and must not land it after a newer
//   write); reads and answered commands are re-issued at once;
// - retry / retry-later: re-issued (after the controller's Command Retry Delay), bounded;
// - anything else (DNR, media, invalid field): the errno of that status.
//
// Path choice (DESIGN.md §5): ANA optimized paths first, non-optimized only when no optimized
// path is usable, inaccessible / persistent-loss / change never; among the best tier the device's
// policy decides (round-robin, queue-depth, failover, latency). A path that failed a request over
// in the last 10 s (a lost connection, a path error) gets requests only when no path of its tier
// has been stable that long: a flapping path that comes back live every second and dies at its
// first command does not keep pulling requests (and, for writes, restarting the ghost-write hold).
//
// Threads: queue q's requests, path set and counters belong to the reactor that serves ublk queue
// q. The path set of each queue is replaced with SetQueuePaths on that reactor (the daemon posts
// it); nothing on the data path takes a lock. The policy may be changed from any thread.
#ifndef NVMF_UBLK_MULTIPATH_NAMESPACE_HEAD_H_
#define NVMF_UBLK_MULTIPATH_NAMESPACE_HEAD_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "io/io_request.h"
#include "multipath/path.h"
#include "nvme/identify.h"
#include "ublk/backend.h"
#include "ublk/params.h"

namespace nvmf_ublk::multipath {

// Device parameters from Identify (DESIGN.md §4): capacity and block sizes from the LBA format,
// max transfer from MDTS (capped by the tag buffer), discard / write-zeroes limits from ONCS and
// DMRSL/WZSL, volatile cache and FUA from VWC.
ublk::DeviceParams DeviceParamsFor(const nvme::ControllerInfo& ctrl, const nvme::NamespaceInfo& ns,
                                   uint64_t max_transfer_bytes, uint32_t max_io_bytes);

// What one path reports for a namespace, as a device sees it.
struct PathView {
  nvme::NamespaceIds ids;
  nvme::NamespaceInfo ns;
  ublk::DeviceParams params;  // DeviceParamsFor() over this path's controller
};
// Whether `path` may serve the device set up from `device` (DESIGN.md §5): the same size and LBA
// format, no identifier that disagrees, and limits at least the device's (a device's limits are
// fixed once it exists, so a path allowing less would fail the requests it is given: it is refused
// instead). kFailedPrecondition with the reason otherwise.
absl::Status CheckAnotherPath(const PathView& device, const PathView& path);

enum class IoPolicy : uint8_t {
  kRoundRobin,  // rotate over the best tier's paths (default)
  kQueueDepth,  // the path with the fewest commands in flight on this queue
  kFailover,    // the first usable path in the order the paths were added
  kLatency,     // the lowest recent service time; 1 request in 16 probes the others
};
const char* ToString(IoPolicy policy);
// "round-robin", "queue-depth", "failover", "latency" (kInvalidArgument names the choices).
absl::StatusOr<IoPolicy> ParseIoPolicy(std::string_view name);

struct HeadStats {
  uint64_t ios = 0;
  uint64_t errors = 0;
  uint64_t failovers = 0;
  uint64_t retries = 0;
  uint64_t held = 0;    // requests held for KATO + CQT (ghost-write safety)
  uint32_t parked = 0;  // requests waiting at the head for a usable path now
};

// Time and timers of the head; the default uses the monotonic clock and the current reactor.
class HeadClock {
 public:
  virtual ~HeadClock() = default;
  virtual int64_t Now() = 0;
  // Runs `fn` on the reactor of `queue` (the caller's) after `delay_ns`.
  virtual void After(uint16_t queue, int64_t delay_ns, std::function<void()> fn) = 0;
};

class NamespaceHead final : public ublk::BlockBackend {
 public:
  // `paths` (initially on every queue) must outlive the head, or be removed from every queue
  // first; `queues` x `depth` BlockIos at most. `clock` null: the real one. Destroy it with no
  // request in it, while its reactors run (the destructor waits for a pending poll, <= 10 ms).
  NamespaceHead(std::string name, std::vector<Path*> paths, uint32_t lba_bytes, uint32_t queues,
                uint32_t depth, IoPolicy policy = IoPolicy::kRoundRobin,
                std::shared_ptr<HeadClock> clock = nullptr);
  ~NamespaceHead() override;

  void Submit(ublk::BlockIo* io) override;
  // Queue `queue`'s paths from now on (its reactor thread, or before the device starts). A path
  // dropped here receives no new request from this queue; one already in flight on it still
  // completes through it (and, failed, goes to the others).
  void SetQueuePaths(uint16_t queue, std::vector<Path*> paths);
  // Any thread.
  void set_policy(IoPolicy p) { policy_.store(p, std::memory_order_relaxed); }
  IoPolicy policy() const { return policy_.load(std::memory_order_relaxed); }
  // For a device whose teardown is stuck (its ublk queues are kept alive, and the kernel may still
  // deliver requests): from now on every request, new or to be re-issued, fails with -EIO without
  // touching a path, so the paths and their controller may go once each reactor has finished its
  // current turn. A request already at a controller still completes through it (a controller that
  // is destroyed fails it). The head itself must then stay allocated for good. Any thread.
  void Abandon() { abandoned_.store(true, std::memory_order_release); }
  bool abandoned() const { return abandoned_.load(std::memory_order_acquire); }
  // For a device being removed: a request that would wait for a path fails with -EIO instead
  // (within 10 ms for those already waiting), so the removal does not wait for a path to return.
  // Requests at a live path complete normally. Any thread.
  void FailWaiting() { fail_waiting_.store(true, std::memory_order_release); }
  // Sums of the per-queue counters (any thread; a moment old).
  HeadStats stats() const;
  const std::string& name() const { return name_; }

 private:
  struct Tag;
  struct Queue;
  enum class Choice { kPath, kWait, kNone };
  Choice Select(Queue& q, uint16_t queue, Path** out);
  void Dispatch(Tag* t);
  void Issue(Tag* t, Path* path);
  void Park(Tag* t);
  void Poll(uint16_t queue);
  bool WaitExpired(const Queue& q, const Tag* t, int64_t now, const char** why) const;
  void OnDone(Tag* t, const io::IoResult& r);
  void Failover(Tag* t, bool unanswered);
  void Finish(Tag* t, int result);
  // A timer on `queue`'s reactor, counted in timers_ until it has run.
  void Arm(uint16_t queue, int64_t delay_ns, std::function<void()> fn);

  std::string name_;
  uint32_t lba_bytes_;
  uint32_t depth_;
  std::shared_ptr<HeadClock> clock_;
  bool real_clock_;
  std::atomic<int> timers_{0};
  std::vector<std::unique_ptr<Queue>> queues_;
  std::vector<std::vector<std::unique_ptr<Tag>>> tags_;  // [queue][tag]
  std::atomic<IoPolicy> policy_;
  std::atomic<bool> abandoned_{false};
  std::atomic<bool> fail_waiting_{false};
};

}  // namespace nvmf_ublk::multipath

#endif  // NVMF_UBLK_MULTIPATH_NAMESPACE_HEAD_H_
