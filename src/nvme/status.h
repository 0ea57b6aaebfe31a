// NVMe completion status: decoding, names, and the retry decision every upper layer uses.
#ifndef NVMF_UBLK_NVME_STATUS_H_
#define NVMF_UBLK_NVME_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace nvmf_ublk::nvme {

// What the host should do with a command that completed with a given status.
enum class RetryClass {
  kSuccess,
  // Path or ANA error (SCT 3), or a transport failure: re-issue on another path (or on this one
  // after it reconnects). Counts as one failover attempt.
  kFailover,
  // The controller asked for a Command Retry Delay (CRD 1..3): re-issue after CRDT[crd] x 100 ms.
  kRetryLater,
  // Transient and not path related (namespace not ready, command aborted, SQ deleted): re-issue
  // a bounded number of times.
  kRetry,
  // DNR set, or a media / invalid-command error: complete with an error.
  kFail,
};
const char* ToString(RetryClass c);

// Decoded Status Field (CQE bits 15:1).
struct CompletionStatus {
  uint16_t raw = 0;  // Status Field, CQE status >> 1
  uint8_t sc() const { return raw & 0xFF; }
  uint8_t sct() const { return (raw >> 8) & 0x7; }
  uint8_t crd() const { return (raw >> 11) & 0x3; }
  bool more() const { return (raw >> 13) & 1; }
  bool dnr() const { return (raw >> 14) & 1; }
  bool ok() const { return sc() == 0 && sct() == 0; }
};

RetryClass Classify(CompletionStatus status);

// Short spec name of the status, e.g. "ANA Inaccessible", "LBA Out of Range", or "SCT 1 SC 0x42".
std::string StatusName(CompletionStatus status);

// Converts a completion status into an absl::Status (OK for success). The message names the status
// and the command ("Read: LBA Out of Range (sct 0x0 sc 0x80, dnr)"); the raw status rides along as
// a payload so NvmeStatusOf() can recover it. Codes: failover -> kUnavailable, retry / retry-later
// -> kAborted, LBA range -> kOutOfRange, invalid field/opcode/namespace -> kInvalidArgument, write
// protect -> kFailedPrecondition, reservation conflict / access denied -> kPermissionDenied, media
// -> kDataLoss, anything else -> kInternal.
absl::Status ToStatus(CompletionStatus status, const char* what);

// The NVMe status carried by a Status made by ToStatus(), if any.
std::optional<CompletionStatus> NvmeStatusOf(const absl::Status& status);

// Retry decision for any Status the engine returns: NVMe statuses go through Classify(); transport
// errors (kUnavailable without an NVMe payload: connection lost, queue torn down) fail over;
// kDeadlineExceeded (command timeout) fails over; everything else fails.
RetryClass ClassifyStatus(const absl::Status& status);

}  // namespace nvmf_ublk::nvme

#endif  // NVMF_UBLK_NVME_STATUS_H_
