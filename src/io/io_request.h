// The unit of I/O the engine carries: one NVMe command with its buffer and its completion callback.
//
// The caller owns the IoRequest and its buffer until OnIoDone. The engine never allocates on this
// path. A request may be submitted again (retry, failover) from inside OnIoDone.
#ifndef NVMF_UBLK_IO_IO_REQUEST_H_
#define NVMF_UBLK_IO_IO_REQUEST_H_

#include <cstdint>

#include "absl/status/status.h"
#include "nvme/commands.h"
#include "nvme/spec.h"
#include "nvme/status.h"

namespace nvmf_ublk::io {

// Outcome of one command, cheap to pass on the hot path.
struct IoResult {
  int err = 0;          // 0, or a negative errno for a host/transport failure (see below)
  uint16_t status = 0;  // NVMe Status Field (CQE status >> 1) when err == 0
  uint32_t dw0 = 0;     // CQE DW0
  uint32_t dw1 = 0;     // CQE DW1 (high half of an 8-byte Property Get)
  bool ok() const { return err == 0 && nvme::CompletionStatus{status}.ok(); }
  // Transport failures fail over (-ECONNABORTED queue torn down, -ENOTCONN controller not
  // connected, -ETIMEDOUT command timed out, -EBADMSG data digest, -EIO protocol inconsistency);
  // -ENODEV (controller deleted) and -EINVAL (request does not fit) fail.
  nvme::RetryClass retry_class() const;
  absl::Status ToStatus(const char* what) const;
};

class IoRequest;

class IoCallback {
 public:
  virtual ~IoCallback() = default;
  virtual void OnIoDone(IoRequest* req, const IoResult& result) = 0;
};

class IoRequest {
 public:
  nvme::Sqe sqe{};
  void* data = nullptr;
  uint32_t len = 0;
  IoCallback* callback = nullptr;
  uint64_t user = 0;  // free for the caller

  // Engine bookkeeping.
  int64_t submit_ns = 0;
  uint16_t cid = 0;
  bool abort_requested = false;
  IoRequest* next = nullptr;  // intrusive wait list

  // Builders for the NVM commands (DESIGN.md §3): set sqe, data and len.
  void Read(uint32_t nsid, uint64_t slba, uint32_t nlb, void* buf, uint32_t bytes) {
    sqe = nvme::BuildRead(nsid, slba, nlb);
    data = buf;
    len = bytes;
  }
  void Write(uint32_t nsid, uint64_t slba, uint32_t nlb, const void* buf, uint32_t bytes,
             bool fua) {
    sqe = nvme::BuildWrite(nsid, slba, nlb, fua);
    data = const_cast<void*>(buf);
    len = bytes;
  }
  void Flush(uint32_t nsid) {
    sqe = nvme::BuildFlush(nsid);
    data = nullptr;
    len = 0;
  }
  void WriteZeroes(uint32_t nsid, uint64_t slba, uint32_t nlb, bool deallocate, bool fua) {
    sqe = nvme::BuildWriteZeroes(nsid, slba, nlb, deallocate, fua);
    data = nullptr;
    len = 0;
  }
  // `ranges` holds `count` DsmRange entries and must outlive the request.
  void Deallocate(uint32_t nsid, nvme::DsmRange* ranges, uint32_t count) {
    sqe = nvme::BuildDatasetManagement(nsid, count, true);
    data = ranges;
    len = count * static_cast<uint32_t>(sizeof(nvme::DsmRange));
  }
};

}  // namespace nvmf_ublk::io

#endif  // NVMF_UBLK_IO_IO_REQUEST_H_
