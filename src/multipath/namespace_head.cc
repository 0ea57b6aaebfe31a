#include "multipath/namespace_head.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"
#include "io/reactor.h"

namespace nvmf_ublk::multipath {
namespace {

constexpr uint32_t kMaxRetries = 5;
constexpr int64_t kPollNs = 10'000'000;  // a waiting request looks for a path this often
constexpr int64_t kMaxBackoffNs = 1'000'000'000;
constexpr uint32_t kProbeEvery = 16;             // latency policy: 1 request in 16 explores
constexpr int64_t kUnstableNs = 10'000'000'000;  // a path that failed over is second choice
constexpr uint32_t kMaxNlb = 65536;              // NLB is a 16-bit 0-based field
// A Command Retry Delay is what the target asks for (CRDT, up to 6553.5 s): a hostile or broken
// target must not park a request for hours, so one retry waits at most this long.
constexpr int64_t kMaxRetryDelayNs = 10'000'000'000;

uint32_t PowerOfTwoFloor(uint64_t v) {
  uint32_t p = 1;
  while (p <= v / 2 && p < (1u << 30)) p <<= 1;
  return p;
}

}  // namespace

ublk::DeviceParams DeviceParamsFor(const nvme::ControllerInfo& ctrl, const nvme::NamespaceInfo& ns,
                                   uint64_t max_transfer_bytes, uint32_t max_io_bytes) {
  ublk::DeviceParams p;
  const uint32_t lba = ns.lba_bytes;
  p.size_bytes = ns.nsze * lba;
  p.logical_block_size = lba;
  const uint64_t pbs = ns.PhysicalBlockBytes();
  p.physical_block_size = pbs >= lba && pbs <= 65536 ? PowerOfTwoFloor(pbs) : lba;
  uint64_t max_io = max_io_bytes;
  if (max_transfer_bytes != 0) max_io = std::min(max_io, max_transfer_bytes);
  max_io = std::min<uint64_t>(max_io, uint64_t{kMaxNlb} * lba);
  p.max_transfer_bytes = static_cast<uint32_t>(max_io / lba * lba);
  p.volatile_cache = ctrl.HasVolatileWriteCache();
  p.fua = p.volatile_cache;  // FUA on writes is mandatory in NVMe; it matters only with a cache
  if (ctrl.SupportsDsm()) {
    // DMRSL: max blocks per range (0: no limit beyond the 32-bit NLB of a range).
    const uint64_t blocks = ctrl.dmrsl ? ctrl.dmrsl : 0xFFFFFFFFull;
    p.max_discard_bytes = blocks * lba;
    p.discard_granularity = p.physical_block_size;
  }
  if (ctrl.SupportsWriteZeroes()) p.max_write_zeroes_bytes = uint64_t{kMaxNlb} * lba;
  return p;
}

absl::Status CheckAnotherPath(const PathView& device, const PathView& path) {
  auto refuse = [](std::string why) { return absl::FailedPreconditionError(std::move(why)); };
  if (path.ns.lba_bytes != device.ns.lba_bytes ||
      path.ns.metadata_bytes != device.ns.metadata_bytes) {
    return refuse(absl::StrCat("its LBA format is ", path.ns.lba_bytes, "+", path.ns.metadata_bytes,
                               " bytes, the device's ", device.ns.lba_bytes, "+",
                               device.ns.metadata_bytes));
  }
  if (path.ns.nsze != device.ns.nsze) {
    return refuse(absl::StrCat("it has ", path.ns.nsze, " blocks, the device ", device.ns.nsze));
  }
  auto differ = [](const auto& a, const auto& b) { return a && b && *a != *b; };
  if (differ(path.ids.nguid, device.ids.nguid) || differ(path.ids.eui64, device.ids.eui64) ||
      differ(path.ids.uuid, device.ids.uuid)) {
    return refuse(absl::StrCat(
        "its identifiers (NGUID ", path.ids.NguidHex(), ", EUI-64 ", path.ids.Eui64Hex(), ", UUID ",
        path.ids.UuidString(), ") disagree with the device's (NGUID ", device.ids.NguidHex(),
        ", EUI-64 ", device.ids.Eui64Hex(), ", UUID ", device.ids.UuidString(), ")"));
  }
  if (path.params.max_transfer_bytes < device.params.max_transfer_bytes) {
    return refuse(absl::StrCat("it takes at most ", path.params.max_transfer_bytes,
                               " bytes per command, the device was set up for ",
                               device.params.max_transfer_bytes));
  }
  if (device.params.max_discard_bytes > 0 && path.params.max_discard_bytes == 0) {
    return refuse("it does not support deallocate (discard), the device does");
  }
  if (device.params.max_write_zeroes_bytes > 0 && path.params.max_write_zeroes_bytes == 0) {
    return refuse("it does not support Write Zeroes, the device does");
  }
  return absl::OkStatus();
}

const char* ToString(IoPolicy policy) {
  switch (policy) {
    case IoPolicy::kRoundRobin:
      return "round-robin";
    case IoPolicy::kQueueDepth:
      return "queue-depth";
    case IoPolicy::kFailover:
      return "failover";
    case IoPolicy::kLatency:
      return "latency";
  }
  return "?";
}

absl::StatusOr<IoPolicy> ParseIoPolicy(std::string_view name) {
  for (IoPolicy p :
       {IoPolicy::kRoundRobin, IoPolicy::kQueueDepth, IoPolicy::kFailover, IoPolicy::kLatency}) {
    if (name == ToString(p)) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown I/O policy '", std::string(name),
                   "' (choose round-robin, queue-depth, failover or latency)"));
}

namespace {

class RealClock final : public HeadClock {
 public:
  int64_t Now() override { return MonotonicNanos(); }
  void After(uint16_t, int64_t delay_ns, std::function<void()> fn) override {
    io::Reactor* r = io::Reactor::Current();
    NCHECK(r != nullptr) << "a namespace head's timer outside a reactor";
    r->AddTimerAfter(delay_ns, std::move(fn));
  }
};

// Modifies the medium: a copy left at a dead association could still land (TP 4129).
bool Modifies(ublk::BlockIo::Op op) {
  return op == ublk::BlockIo::kWrite || op == ublk::BlockIo::kWriteZeroes ||
         op == ublk::BlockIo::kDiscard;
}

// Lower is better; kGone paths never get I/O.
enum Rank : int { kOptimized = 0, kNonOptimized = 1, kWaitable = 2, kGone = 3 };

Rank RankOf(Path* p, uint16_t queue) {
  switch (p->usability(queue)) {
    case Path::Usability::kDown:
      return kGone;
    case Path::Usability::kConnecting:
      return kWaitable;
    case Path::Usability::kLive:
      break;
  }
  const uint8_t ana = p->ana_state();
  if (ana == nvme::kAnaPersistentLoss) return kGone;
  if (p->ana_refreshing()) return kWaitable;
  if (ana == nvme::kAnaOptimized) return kOptimized;
  if (ana == nvme::kAnaNonOptimized) return kNonOptimized;
  return kWaitable;  // inaccessible or change: may become accessible
}

void Bump32(std::atomic<uint32_t>& c, int32_t d) {
  c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}

}  // namespace

struct NamespaceHead::Tag final : io::IoCallback {
  NamespaceHead* head = nullptr;
  ublk::BlockIo* io = nullptr;
  Path* path = nullptr;  // where it is (or was last) in flight
  Tag* next = nullptr;   // wait list
  uint32_t retries = 0;
  uint32_t failovers = 0;     // consecutive, for the back-off
  int64_t first_fail_ns = 0;  // first failover or wait of this request (0: none yet)
  int64_t not_before_ns = 0;  // held (ghost write, back-off) until then
  int64_t issued_ns = 0;
  io::IoRequest req;
  nvme::DsmRange range{};
  void OnIoDone(io::IoRequest*, const io::IoResult& r) override { head->OnDone(this, r); }
};

struct NamespaceHead::Queue {
  std::vector<Path*> paths;
  uint32_t rr = 0;
  uint32_t probe = 0;
  Tag* wait_head = nullptr;
  Tag* wait_tail = nullptr;
  bool poll_armed = false;
  // Single writer (this queue's reactor).
  struct alignas(64) Counters {
    std::atomic<uint64_t> ios{0}, errors{0}, failovers{0}, retries{0}, held{0};
    std::atomic<uint32_t> parked{0};
  } c;
};

NamespaceHead::NamespaceHead(std::string name, std::vector<Path*> paths, uint32_t lba_bytes,
                             uint32_t queues, uint32_t depth, IoPolicy policy,
                             std::shared_ptr<HeadClock> clock)
    : name_(std::move(name)),
      lba_bytes_(lba_bytes),
      depth_(depth),
      clock_(clock ? std::move(clock) : std::make_shared<RealClock>()),
      real_clock_(dynamic_cast<RealClock*>(clock_.get()) != nullptr),
      policy_(policy) {
  tags_.resize(queues);
  for (uint32_t q = 0; q < queues; ++q) {
    queues_.push_back(std::make_unique<Queue>());
    queues_.back()->paths = paths;
    tags_[q].reserve(depth);
    for (uint32_t t = 0; t < depth; ++t) {
      auto tag = std::make_unique<Tag>();
      tag->head = this;
      tag->req.callback = tag.get();
      tags_[q].push_back(std::move(tag));
    }
  }
}

NamespaceHead::~NamespaceHead() {
  // A poll may still be armed (for up to kPollNs after the last wait ended): its timer must have
  // run before the head goes. Bounded: none re-arms once nothing waits.
  const int64_t give_up = MonotonicNanos() + 5'000'000'000;
  while (real_clock_ && timers_.load(std::memory_order_acquire) > 0 && MonotonicNanos() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void NamespaceHead::Arm(uint16_t queue, int64_t delay_ns, std::function<void()> fn) {
  timers_.fetch_add(1, std::memory_order_relaxed);
  clock_->After(queue, delay_ns, [this, fn = std::move(fn)] {
    fn();
    timers_.fetch_sub(1, std::memory_order_release);  // the last touch of the head
  });
}

void NamespaceHead::SetQueuePaths(uint16_t queue, std::vector<Path*> paths) {
  if (queue >= queues_.size()) return;
  Queue& q = *queues_[queue];
  q.paths = std::move(paths);
  q.rr = 0;
  // A waiting request may go now (a path came), or must fail (the last one went): look at once,
  // besides the poll that may be armed already (a poll with nothing waiting does nothing).
  if (q.wait_head != nullptr) {
    q.poll_armed = true;
    Arm(queue, 0, [this, queue] { Poll(queue); });
  }
}

HeadStats NamespaceHead::stats() const {
  HeadStats s;
  for (const auto& q : queues_) {
    s.ios += q->c.ios.load(std::memory_order_relaxed);
    s.errors += q->c.errors.load(std::memory_order_relaxed);
    s.failovers += q->c.failovers.load(std::memory_order_relaxed);
    s.retries += q->c.retries.load(std::memory_order_relaxed);
    s.held += q->c.held.load(std::memory_order_relaxed);
    s.parked += q->c.parked.load(std::memory_order_relaxed);
  }
  return s;
}

NamespaceHead::Choice NamespaceHead::Select(Queue& q, uint16_t queue, Path** out) {
  const size_t n = q.paths.size();
  int best = kGone;
  // At most a handful of paths: rank them twice rather than allocate.
  for (size_t i = 0; i < n; ++i) best = std::min<int>(best, RankOf(q.paths[i], queue));
  if (best == kGone) return Choice::kNone;
  if (best == kWaitable) return Choice::kWait;
  // Within the best tier, paths that failed a request over lately only when no other is left.
  const int64_t now = clock_->Now();
  auto stable = [&](size_t i) {
    const int64_t f = q.paths[i]->queue_stats(queue).failed_ns.load(std::memory_order_relaxed);
    return f == 0 || now - f >= kUnstableNs;
  };
  bool any_stable = false;
  for (size_t i = 0; i < n && !any_stable; ++i) {
    any_stable = RankOf(q.paths[i], queue) == best && stable(i);
  }
  auto eligible = [&](size_t i) {
    return RankOf(q.paths[i], queue) == best && (!any_stable || stable(i));
  };
  Path* chosen = nullptr;
  switch (policy()) {
    case IoPolicy::kFailover:
      for (size_t i = 0; i < n && chosen == nullptr; ++i) {
        if (eligible(i)) chosen = q.paths[i];
      }
      break;
    case IoPolicy::kQueueDepth: {
      uint32_t least = UINT32_MAX;
      for (size_t k = 0; k < n; ++k) {
        const size_t i = (q.rr + k) % n;
        if (!eligible(i)) continue;
        const uint32_t depth =
            q.paths[i]->queue_stats(queue).in_flight.load(std::memory_order_relaxed);
        if (depth < least) {
          least = depth;
          chosen = q.paths[i];
        }
      }
      q.rr = static_cast<uint32_t>((q.rr + 1) % n);
      break;
    }
    case IoPolicy::kLatency: {
      if (++q.probe % kProbeEvery != 0) {
        int64_t lowest = INT64_MAX;
        for (size_t i = 0; i < n; ++i) {
          if (!eligible(i)) continue;
          // No sample yet counts as fastest: it gets one.
          const int64_t e = q.paths[i]->queue_stats(queue).ewma_ns.load(std::memory_order_relaxed);
          if (e < lowest) {
            lowest = e;
            chosen = q.paths[i];
          }
        }
        break;
      }
      [[fallthrough]];  // the probe: round-robin keeps every path's figure fresh
    }
    case IoPolicy::kRoundRobin:
      for (size_t k = 0; k < n; ++k) {
        const size_t i = (q.rr + k) % n;
        if (!eligible(i)) continue;
        chosen = q.paths[i];
        q.rr = static_cast<uint32_t>((i + 1) % n);
        break;
      }
      break;
  }
  *out = chosen;
  return chosen ? Choice::kPath : Choice::kNone;
}

void NamespaceHead::Submit(ublk::BlockIo* io) {
  if (io->queue >= tags_.size() || io->tag >= depth_) {
    io->Complete(-EINVAL);
    return;
  }
  Tag* t = tags_[io->queue][io->tag].get();
  t->io = io;
  t->path = nullptr;
  t->retries = 0;
  t->failovers = 0;
  t->first_fail_ns = 0;
  t->not_before_ns = 0;
  PathQueueStats::Bump(queues_[io->queue]->c.ios);
  Dispatch(t);
}

void NamespaceHead::Dispatch(Tag* t) {
  ublk::BlockIo* io = t->io;
  if (abandoned()) {
    Finish(t, -EIO);
    return;
  }
  Queue& q = *queues_[io->queue];
  if (t->not_before_ns != 0 && clock_->Now() < t->not_before_ns) {
    Park(t);
    return;
  }
  Path* path = nullptr;
  switch (Select(q, io->queue, &path)) {
    case Choice::kPath:
      Issue(t, path);
      return;
    case Choice::kWait:
      if (!fail_waiting_.load(std::memory_order_acquire)) {
        Park(t);
        return;
      }
      NLOG(WARNING) << name_ << ": device is being removed and no path is usable now: failing "
                    << ublk::ToString(io->op) << " at " << io->offset_bytes;
      Finish(t, -EIO);
      return;
    case Choice::kNone:
      NLOG(WARNING) << name_ << ": no usable path for " << ublk::ToString(io->op) << " at "
                    << io->offset_bytes;
      Finish(t, -EIO);
      return;
  }
}

void NamespaceHead::Park(Tag* t) {
  const uint16_t queue = t->io->queue;
  Queue& q = *queues_[queue];
  if (t->first_fail_ns == 0) t->first_fail_ns = clock_->Now();
  t->next = nullptr;
  if (q.wait_tail) {
    q.wait_tail->next = t;
  } else {
    q.wait_head = t;
  }
  q.wait_tail = t;
  Bump32(q.c.parked, 1);
  if (!q.poll_armed) {
    q.poll_armed = true;
    Arm(queue, kPollNs, [this, queue] { Poll(queue); });
  }
}

bool NamespaceHead::WaitExpired(const Queue& q, const Tag* t, int64_t now, const char** why) const {
  // The bounds are those of the paths: the most patient one decides, and -1 (off / forever) on
  // any path lifts the bound.
  int64_t fast = -1, loss = -1;
  bool fast_all = !q.paths.empty(), loss_all = !q.paths.empty();
  for (Path* p : q.paths) {
    const int64_t f = p->FastFailNs(), l = p->LossTimeoutNs();
    if (f < 0) fast_all = false;
    if (l < 0) loss_all = false;
    fast = std::max(fast, f);
    loss = std::max(loss, l);
  }
  const int64_t waited = now - t->first_fail_ns;
  if (fast_all && waited > fast) {
    *why = "fast_io_fail_tmo";
    return true;
  }
  if (loss_all && waited > loss) {
    *why = "ctrl_loss_tmo";
    return true;
  }
  return false;
}

void NamespaceHead::Poll(uint16_t queue) {
  Queue& q = *queues_[queue];
  q.poll_armed = false;
  Tag* t = q.wait_head;
  q.wait_head = q.wait_tail = nullptr;
  const int64_t now = clock_->Now();
  const bool closing = fail_waiting_.load(std::memory_order_acquire) || abandoned();
  while (t != nullptr) {
    Tag* next = t->next;
    t->next = nullptr;
    Bump32(q.c.parked, -1);
    const char* why = nullptr;
    if (WaitExpired(q, t, now, &why)) {
      NLOG(WARNING) << name_ << ": " << ublk::ToString(t->io->op) << " at " << t->io->offset_bytes
                    << " found no usable path within " << why << ": failing it";
      Finish(t, -EIO);
    } else if (closing && t->not_before_ns > now) {
      Finish(t, -EIO);
    } else {
      Dispatch(t);  // may park it again, behind those re-parked before it: order is kept
    }
    t = next;
  }
}

void NamespaceHead::Issue(Tag* t, Path* path) {
  ublk::BlockIo* io = t->io;
  t->path = path;
  const uint32_t nsid = path->nsid();
  const uint64_t slba = io->offset_bytes / lba_bytes_;
  const uint32_t nlb = io->len_bytes / lba_bytes_;
  switch (io->op) {
    case ublk::BlockIo::kRead:
      t->req.Read(nsid, slba, nlb, io->buffer, io->len_bytes);
      break;
    case ublk::BlockIo::kWrite:
      t->req.Write(nsid, slba, nlb, io->buffer, io->len_bytes, io->fua);
      break;
    case ublk::BlockIo::kFlush:
      t->req.Flush(nsid);
      break;
    case ublk::BlockIo::kDiscard:
      t->range.cattr.set(0);
      t->range.nlb.set(nlb);
      t->range.slba.set(slba);
      t->req.Deallocate(nsid, &t->range, 1);
      break;
    case ublk::BlockIo::kWriteZeroes:
      t->req.WriteZeroes(nsid, slba, nlb, /*deallocate=*/!io->nounmap, /*fua=*/false);
      break;
  }
  PathQueueStats& ps = path->queue_stats(io->queue);
  Bump32(ps.in_flight, 1);
  PathQueueStats::Bump(ps.ios);
  t->issued_ns = clock_->Now();
  path->Submit(io->queue, &t->req);
}

void NamespaceHead::OnDone(Tag* t, const io::IoResult& r) {
  Queue& q = *queues_[t->io->queue];
  PathQueueStats& ps = t->path->queue_stats(t->io->queue);
  Bump32(ps.in_flight, -1);
  if (r.ok()) {
    const int64_t took = std::max<int64_t>(clock_->Now() - t->issued_ns, 1);
    const int64_t e = ps.ewma_ns.load(std::memory_order_relaxed);
    ps.ewma_ns.store(e == 0 ? took : e + (took - e) / 8, std::memory_order_relaxed);
    const bool data = t->io->op == ublk::BlockIo::kRead || t->io->op == ublk::BlockIo::kWrite;
    Finish(t, data ? static_cast<int>(t->io->len_bytes) : 0);
    return;
  }
  PathQueueStats::Bump(ps.errors);
  if (r.err != 0) {
    // Transport: the path failed it. Unanswered means it may still run at the subsystem.
    if (r.err != -EINVAL) {
      Failover(t, r.err == -ECONNABORTED || r.err == -ETIMEDOUT);
      return;
    }
  } else {
    switch (r.retry_class()) {
      case nvme::RetryClass::kFailover:
        t->path->OnPathError();  // re-read the ANA log before this path gets I/O again
        Failover(t, false);
        return;
      case nvme::RetryClass::kRetry:
        PathQueueStats::Bump(q.c.retries);
        if (++t->retries <= kMaxRetries) {
          Dispatch(t);
          return;
        }
        break;
      case nvme::RetryClass::kRetryLater:
        PathQueueStats::Bump(q.c.retries);
        if (++t->retries <= kMaxRetries) {
          const int64_t delay =
              std::clamp<int64_t>(t->path->RetryDelayNs(nvme::CompletionStatus{r.status}.crd()),
                                  1'000'000, kMaxRetryDelayNs);
          Arm(t->io->queue, delay, [this, t] { Dispatch(t); });
          return;
        }
        break;
      case nvme::RetryClass::kSuccess:
      case nvme::RetryClass::kFail:
        break;
    }
  }
  const absl::Status s = r.ToStatus(ublk::ToString(t->io->op));
  NLOG(WARNING) << name_ << ": " << s << " at byte " << t->io->offset_bytes << " (+"
                << t->io->len_bytes << ")";
  // The one place an I/O failure becomes the errno the block layer sees.
  Finish(t, r.err == -EBADMSG || r.err == -ECONNABORTED || r.err == -ENOTCONN ? -EIO
                                                                              : StatusToErrno(s));
}

void NamespaceHead::Failover(Tag* t, bool unanswered) {
  Queue& q = *queues_[t->io->queue];
  PathQueueStats::Bump(q.c.failovers);
  const int64_t now = clock_->Now();
  t->path->queue_stats(t->io->queue).failed_ns.store(now, std::memory_order_relaxed);
  if (t->first_fail_ns == 0) t->first_fail_ns = now;
  if (unanswered && Modifies(t->io->op)) {
    const int64_t hold = t->path->GhostHoldNs();
    if (hold > 0 && now + hold > t->not_before_ns) {
      t->not_before_ns = now + hold;
      PathQueueStats::Bump(q.c.held);
    }
  }
  if (++t->failovers >= 2) {
    const int64_t backoff =
        std::min<int64_t>(int64_t{1'000'000} << std::min(t->failovers - 2, 10u), kMaxBackoffNs);
    t->not_before_ns = std::max(t->not_before_ns, now + backoff);
  }
  const char* why = nullptr;
  if (WaitExpired(q, t, now, &why)) {
    NLOG(WARNING) << name_ << ": " << ublk::ToString(t->io->op) << " at " << t->io->offset_bytes
                  << " kept failing over for longer than " << why << ": failing it";
    Finish(t, -EIO);
    return;
  }
  Dispatch(t);
}

void NamespaceHead::Finish(Tag* t, int result) {
  if (result < 0) PathQueueStats::Bump(queues_[t->io->queue]->c.errors);
  ublk::BlockIo* io = t->io;
  NCHECK(io != nullptr) << name_ << ": a request completed twice";
  t->io = nullptr;
  io->Complete(result);
}

}  // namespace nvmf_ublk::multipath
