// A namespace head: one block device's worth of I/O, served over one or more paths to the same
// namespace (DESIGN.md §5). Implements ublk::BlockBackend.
//
// Each ublk I/O becomes one NVMe command on the chosen path's I/O queue of the same reactor (no
// cross-thread hand-off). Results:
// - success: the ublk I/O completes with its byte count;
// - failover class (path/ANA status, connection lost, timeout, digest error): re-issued once per
//   failure on the best usable path (a live one, else one that is reconnecting: the command then
//   waits there, bounded by fast_io_fail_tmo / ctrl_loss_tmo), never dropped and never duplicated;
//   with no usable path left it fails with -EIO;
// - retry / retry-later: re-issued (after the controller's Command Retry Delay), bounded;
// - anything else (DNR, media, invalid field): the errno of that status.
// Path selection: round-robin over live paths (ANA grouping comes with multipath proper).
#ifndef NVMF_UBLK_MULTIPATH_NAMESPACE_HEAD_H_
#define NVMF_UBLK_MULTIPATH_NAMESPACE_HEAD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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

struct HeadStats {
  std::atomic<uint64_t> ios{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> failovers{0};
  std::atomic<uint64_t> retries{0};
};

class NamespaceHead final : public ublk::BlockBackend {
 public:
  // `paths` must outlive the head; `queues` x `depth` BlockIos at most.
  NamespaceHead(std::string name, std::vector<Path*> paths, uint32_t lba_bytes, uint32_t queues,
                uint32_t depth);
  ~NamespaceHead() override;

  void Submit(ublk::BlockIo* io) override;
  // For a device whose teardown is stuck (its ublk queues are kept alive, and the kernel may still
  // deliver requests): from now on every request, new or to be re-issued, fails with -EIO without
  // touching a path, so the paths and their controller may go once each reactor has finished its
  // current turn. A request already at a controller still completes through it (a controller that
  // is destroyed fails it). The head itself must then stay allocated for good. Any thread.
  void Abandon() { abandoned_.store(true, std::memory_order_release); }
  bool abandoned() const { return abandoned_.load(std::memory_order_acquire); }
  const HeadStats& stats() const { return stats_; }
  const std::string& name() const { return name_; }

 private:
  struct Tag;
  Path* Select(uint16_t queue);
  void Issue(Tag* t);
  void OnDone(Tag* t, const io::IoResult& r);
  void Finish(Tag* t, int result);

  std::string name_;
  std::vector<Path*> paths_;
  uint32_t lba_bytes_;
  uint32_t depth_;
  std::vector<std::vector<std::unique_ptr<Tag>>> tags_;  // [queue][tag]
  std::vector<uint32_t> rr_;                             // per queue round-robin cursor
  HeadStats stats_;
  std::atomic<bool> abandoned_{false};
};

}  // namespace nvmf_ublk::multipath

#endif  // NVMF_UBLK_MULTIPATH_NAMESPACE_HEAD_H_
