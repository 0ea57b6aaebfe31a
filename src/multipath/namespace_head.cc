#include "multipath/namespace_head.h"

#include <algorithm>
#include <cerrno>

#include "base/log.h"
#include "base/status.h"

namespace nvmf_ublk::multipath {
namespace {

constexpr uint32_t kMaxFailovers = 64;  // a path that keeps failing the same command
constexpr uint32_t kMaxRetries = 5;
constexpr uint32_t kMaxNlb = 65536;  // NLB is a 16-bit 0-based field
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

struct NamespaceHead::Tag final : io::IoCallback {
  NamespaceHead* head = nullptr;
  ublk::BlockIo* io = nullptr;
  Path* path = nullptr;
  uint32_t failovers = 0;
  uint32_t retries = 0;
  io::IoRequest req;
  nvme::DsmRange range{};
  void OnIoDone(io::IoRequest*, const io::IoResult& r) override { head->OnDone(this, r); }
};

NamespaceHead::NamespaceHead(std::string name, std::vector<Path*> paths, uint32_t lba_bytes,
                             uint32_t queues, uint32_t depth)
    : name_(std::move(name)), paths_(std::move(paths)), lba_bytes_(lba_bytes), depth_(depth) {
  tags_.resize(queues);
  rr_.assign(queues, 0);
  for (auto& q : tags_) {
    q.reserve(depth);
    for (uint32_t t = 0; t < depth; ++t) {
      auto tag = std::make_unique<Tag>();
      tag->head = this;
      tag->req.callback = tag.get();
      q.push_back(std::move(tag));
    }
  }
}

NamespaceHead::~NamespaceHead() = default;

Path* NamespaceHead::Select(uint16_t queue) {
  const size_t n = paths_.size();
  Path* connecting = nullptr;
  for (size_t i = 0; i < n; ++i) {
    Path* p = paths_[(rr_[queue] + i) % n];
    const Path::Usability u = p->usability(queue);
    if (u == Path::Usability::kLive) {
      rr_[queue] = static_cast<uint32_t>((rr_[queue] + i + 1) % n);
      return p;
    }
    if (u == Path::Usability::kConnecting && connecting == nullptr) connecting = p;
  }
  return connecting;
}

void NamespaceHead::Submit(ublk::BlockIo* io) {
  if (io->queue >= tags_.size() || io->tag >= depth_) {
    io->Complete(-EINVAL);
    return;
  }
  Tag* t = tags_[io->queue][io->tag].get();
  t->io = io;
  t->failovers = 0;
  t->retries = 0;
  stats_.ios.fetch_add(1, std::memory_order_relaxed);
  Issue(t);
}

void NamespaceHead::Issue(Tag* t) {
  ublk::BlockIo* io = t->io;
  if (abandoned()) {
    Finish(t, -EIO);
    return;
  }
  Path* path = Select(io->queue);
  if (path == nullptr) {
    NLOG(WARNING) << name_ << ": no usable path for " << ublk::ToString(io->op) << " at "
                  << io->offset_bytes;
    Finish(t, -EIO);
    return;
  }
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
  path->Submit(io->queue, &t->req);
}

void NamespaceHead::OnDone(Tag* t, const io::IoResult& r) {
  if (r.ok()) {
    const bool data = t->io->op == ublk::BlockIo::kRead || t->io->op == ublk::BlockIo::kWrite;
    Finish(t, data ? static_cast<int>(t->io->len_bytes) : 0);
    return;
  }
  switch (r.retry_class()) {
    case nvme::RetryClass::kFailover:
      stats_.failovers.fetch_add(1, std::memory_order_relaxed);
      if (++t->failovers <= kMaxFailovers) {
        Issue(t);
        return;
      }
      break;
    case nvme::RetryClass::kRetry:
      stats_.retries.fetch_add(1, std::memory_order_relaxed);
      if (++t->retries <= kMaxRetries) {
        Issue(t);
        return;
      }
      break;
    case nvme::RetryClass::kRetryLater:
      stats_.retries.fetch_add(1, std::memory_order_relaxed);
      if (++t->retries <= kMaxRetries) {
        const int64_t delay =
            std::clamp<int64_t>(t->path->RetryDelayNs(nvme::CompletionStatus{r.status}.crd()),
                                1'000'000, kMaxRetryDelayNs);
        t->path->After(t->io->queue, delay, [this, t] { Issue(t); });
        return;
      }
      break;
    case nvme::RetryClass::kSuccess:
    case nvme::RetryClass::kFail:
      break;
  }
  const absl::Status s = r.ToStatus(ublk::ToString(t->io->op));
  NLOG(WARNING) << name_ << ": " << s << " at byte " << t->io->offset_bytes << " (+"
                << t->io->len_bytes << ")";
  // The one place an I/O failure becomes the errno the block layer sees.
  Finish(t, r.err == -EBADMSG || r.err == -ECONNABORTED || r.err == -ENOTCONN ? -EIO
                                                                              : StatusToErrno(s));
}

void NamespaceHead::Finish(Tag* t, int result) {
  if (result < 0) stats_.errors.fetch_add(1, std::memory_order_relaxed);
  ublk::BlockIo* io = t->io;
  t->io = nullptr;
  io->Complete(result);
}

}  // namespace nvmf_ublk::multipath
