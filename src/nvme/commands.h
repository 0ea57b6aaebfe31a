// Builders for the NVMe and NVMe over Fabrics commands a host sends, and parsers for their
// completion results. Builders return an Sqe with CID 0 and an empty DPTR: the queue that sends
// the command assigns the CID and describes the data (in-capsule or transport SGL).
#ifndef NVMF_UBLK_NVME_COMMANDS_H_
#define NVMF_UBLK_NVME_COMMANDS_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "nvme/spec.h"

namespace nvmf_ublk::nvme {

// Data transfer direction, from opcode bits 1:0 (Base 2.0 §5, Figure 138; for fabrics commands the
// same bits of FCTYPE, NVMe-oF 1.1 Figure 9).
enum class DataDirection : uint8_t { kNone = 0, kHostToController = 1, kControllerToHost = 2 };
DataDirection DirectionOf(const Sqe& sqe);

// Human-readable command name for logs and errors: "Read", "Identify", "Connect", ...
// Admin and I/O opcodes overlap, so the caller says which queue the command is for.
const char* CommandName(const Sqe& sqe, bool admin_queue);

// --- Fabrics (NVMe-oF 1.1 §3.3)
// --------------------------------------------------------------------- Connect for queue `qid` (0
// = admin) with `sqsize` entries (1-based; encoded 0-based), keep-alive timeout `kato_ms` (admin
// queue only; 0 disables) and attributes `cattr`.
Sqe BuildConnect(uint16_t qid, uint16_t sqsize, uint32_t kato_ms, uint8_t cattr);

// Connect data. Rejects NQNs that are empty, longer than 223 bytes or not "nqn."-prefixed.
// `cntlid`: kAdminCntlidDynamic for the admin queue, the admin queue's CNTLID for I/O queues.
absl::StatusOr<ConnectData> BuildConnectData(const uint8_t (&hostid)[16], uint16_t cntlid,
                                             std::string_view subnqn, std::string_view hostnqn);

struct ConnectResult {
  uint16_t cntlid;   // Controller ID assigned (admin queue)
  uint16_t authreq;  // AUTHREQ: non-zero when in-band authentication is required
};
ConnectResult ParseConnectResult(const Cqe& cqe);

Sqe BuildPropertyGet(Property property);
Sqe BuildPropertySet(Property property, uint64_t value);
// Authentication Send / Receive (Base 2.0 §6.1, §6.2): SECP, SPSP0, SPSP1 in CDW10 bits 31:8, the
// transfer (TL) or allocation (AL) length in CDW11.
Sqe BuildAuthSend(uint8_t secp, uint8_t spsp0, uint8_t spsp1, uint32_t tl);
Sqe BuildAuthReceive(uint8_t secp, uint8_t spsp0, uint8_t spsp1, uint32_t al);
// Value of a Property Get completion (8-byte properties use DW1 as the high half).
uint64_t PropertyValue(const Cqe& cqe);

// --- Admin
// ----------------------------------------------------------------------------------------------
// Identify (4096 bytes of data). `cntid` goes in CDW10 bits 31:16 (unused by the CNS values we
// send).
Sqe BuildIdentify(IdentifyCns cns, uint32_t nsid);

// Get Log Page of `length` bytes (a multiple of 4, > 0) at byte `offset` (a multiple of 4).
// `rae`: retain asynchronous event (keep the AER condition latched). `lsp`: log specific field.
Sqe BuildGetLogPage(LogPageId lid, uint32_t nsid, uint64_t offset, uint32_t length, uint8_t lsp = 0,
                    bool rae = false);

Sqe BuildSetFeatures(FeatureId fid, uint32_t cdw11);
Sqe BuildGetFeatures(FeatureId fid);

// Set Features / Number of Queues asking for `count` I/O submission and completion queues.
Sqe BuildSetNumberOfQueues(uint16_t count);
// Queues granted by the controller: min(NSQA, NCQA) + 1.
uint32_t GrantedQueueCount(const Cqe& cqe);

Sqe BuildKeepAlive();
Sqe BuildAsyncEventRequest();
// Abort command `cid` on submission queue `sqid`.
Sqe BuildAbort(uint16_t sqid, uint16_t cid);
// True if the controller reports that it aborted the command (DW0 bit 0 clear).
bool AbortSucceeded(const Cqe& cqe);

// Asynchronous Event Request completion (Base 2.0 Figure 146).
struct AsyncEvent {
  uint8_t type;      // kAerType*
  uint8_t info;      // Asynchronous Event Information (kAerNotice* for notices)
  uint8_t log_page;  // Log page to read to clear the event
};
AsyncEvent ParseAsyncEvent(const Cqe& cqe);
const char* AsyncEventName(const AsyncEvent& event);

// --- NVM command set
// ------------------------------------------------------------------------------- `nlb` is the
// number of logical blocks (1-based, 1..65536); encoded 0-based.
Sqe BuildRead(uint32_t nsid, uint64_t slba, uint32_t nlb);
Sqe BuildWrite(uint32_t nsid, uint64_t slba, uint32_t nlb, bool fua);
Sqe BuildFlush(uint32_t nsid);
Sqe BuildWriteZeroes(uint32_t nsid, uint64_t slba, uint32_t nlb, bool deallocate, bool fua);
// Dataset Management with `nr_ranges` (1..256) DsmRange entries sent as data.
Sqe BuildDatasetManagement(uint32_t nsid, uint32_t nr_ranges, bool deallocate);

}  // namespace nvmf_ublk::nvme

#endif  // NVMF_UBLK_NVME_COMMANDS_H_
