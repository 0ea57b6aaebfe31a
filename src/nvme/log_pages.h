// Parsers for the log pages a host reads: the Discovery log (NVMe-oF 1.1 §5.3, Figures 38-40) with
// the generation-counter read protocol, and the Asymmetric Namespace Access log (Base 2.0
// §5.16.1.12, Figures 230-231).
//
// Layouts are libnvme 1.3's (struct nvmf_discovery_log, nvmf_disc_log_entry, nvme_ana_log,
// nvme_ana_group_desc), used only in log_pages.cc. Everything here is sans-I/O: the caller sends
// the Get Log Page commands and hands the bytes back. Malformed data from the remote side becomes a
// Status (kDataLoss naming the field), never a read past the buffer.
#ifndef NVMF_UBLK_NVME_LOG_PAGES_H_
#define NVMF_UBLK_NVME_LOG_PAGES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace nvmf_ublk::nvme {

// --- Discovery log -------------------------------------------------------------------------------
inline constexpr uint32_t kDiscoveryLogHeaderBytes = 1024;
inline constexpr uint32_t kDiscoveryLogEntryBytes = 1024;
// More records than this is treated as corrupt (1 MiB of entries).
inline constexpr uint64_t kDiscoveryLogMaxRecords = 1024;

// TRTYPE (NVMe-oF 1.1 Figure 40).
inline constexpr uint8_t kTrtypeRdma = 1;
inline constexpr uint8_t kTrtypeFc = 2;
inline constexpr uint8_t kTrtypeTcp = 3;
inline constexpr uint8_t kTrtypeLoop = 254;
// ADRFAM.
inline constexpr uint8_t kAdrfamIpv4 = 1;
inline constexpr uint8_t kAdrfamIpv6 = 2;
// SUBTYPE (NVMe-oF 1.1 Figure 40; TP 8013 added 3).
inline constexpr uint8_t kSubtypeDiscoveryReferral = 1;
inline constexpr uint8_t kSubtypeNvme = 2;
inline constexpr uint8_t kSubtypeCurrentDiscovery = 3;
// TSAS SECTYPE for NVMe/TCP (NVMe/TCP 1.0 Figure 9).
inline constexpr uint8_t kTcpSectypeNone = 0;
inline constexpr uint8_t kTcpSectypeTls12 = 1;
inline constexpr uint8_t kTcpSectypeTls13 = 2;

// One Discovery Log Page entry (NVMe-oF 1.1 Figure 40). Text fields are trimmed; for NVMe/TCP,
// `trsvcid` is the port and `traddr` the IP address, both as text (no resolution happens here).
struct DiscoveryEntry {
  uint8_t trtype = 0;       // TRTYPE (byte 0)
  uint8_t adrfam = 0;       // ADRFAM (byte 1)
  uint8_t subtype = 0;      // SUBTYPE (byte 2)
  uint8_t treq = 0;         // TREQ (byte 3)
  uint16_t portid = 0;      // PORTID (byte 4)
  uint16_t cntlid = 0;      // CNTLID (byte 6): FFFFh dynamic controller model
  uint16_t asqsz = 0;       // ASQSZ (byte 8): admin max SQ size
  uint16_t eflags = 0;      // EFLAGS (byte 10)
  std::string trsvcid;      // TRSVCID (bytes 32..63)
  std::string subnqn;       // SUBNQN (bytes 256..511)
  std::string traddr;       // TRADDR (bytes 512..767)
  uint8_t tcp_sectype = 0;  // TSAS byte 0 (bytes 768..1023): SECTYPE when TRTYPE is TCP

  // An entry for another discovery controller (SUBTYPE 1) that the host should also query.
  bool IsReferral() const { return subtype == kSubtypeDiscoveryReferral; }
};

// "rdma", "fc", "tcp", "loop", or "unknown".
const char* TrtypeName(uint8_t trtype);
// "ipv4", "ipv6", "ib", "fc", "pci", "loop", or "unknown".
const char* AdrfamName(uint8_t adrfam);
// "referral" (1), "nvme subsystem" (2), "current discovery subsystem" (3), or "unknown".
const char* SubtypeName(uint8_t subtype);

struct DiscoveryLogHeader {
  uint64_t genctr = 0;  // GENCTR: generation counter (byte 0)
  uint64_t numrec = 0;  // NUMREC: number of records (byte 8)
  uint16_t recfmt = 0;  // RECFMT: record format (byte 16), must be 0
};

struct DiscoveryLog {
  DiscoveryLogHeader header;
  std::vector<DiscoveryEntry> entries;
};

// The 1024-byte header of a Discovery log (`len` >= 1024). Rejects RECFMT != 0 and NUMREC above
// `max_records`.
absl::StatusOr<DiscoveryLogHeader> ParseDiscoveryLogHeader(
    const uint8_t* data, size_t len, uint64_t max_records = kDiscoveryLogMaxRecords);

// A whole Discovery log: the 1024-byte header then NUMREC 1024-byte entries (bytes beyond them are
// ignored). Rejects a buffer too short for NUMREC entries and text fields with control characters
// (or, except SUBNQN, non-ASCII bytes). Empty fields are kept: whether an entry is usable for a
// transport is the caller's decision.
absl::StatusOr<DiscoveryLog> ParseDiscoveryLog(const uint8_t* data, size_t len);

// Reads a consistent Discovery log with the generation counter rule (NVMe-oF 1.1 §5.3, as libnvme's
// nvmf_get_discovery_log does): read the header, read NUMREC entries at offset 1024 (in chunks of
// at most `max_chunk_bytes`), read the header again; if GENCTR changed, the entries may mix two
// generations, so read them again with the new header's NUMREC. (The re-read header is the start
// of the next attempt, which saves one command per retry compared to libnvme.) After
// `max_attempts` attempts that each saw the log change, fails with kUnavailable.
//
// Sans-I/O: the caller issues Get Log Page (LID 70h) for each NextRead() and passes the data to
// OnData(). All reads are multiples of 1024 bytes at multiples of 1024.
//
//   DiscoveryLogReader reader;
//   while (!reader.done()) {
//     LogRead r = reader.NextRead();
//     RETURN_IF_ERROR(reader.OnData(SendGetLogPage(r.offset, r.length)));
//   }
//   use(reader.entries());
class DiscoveryLogReader {
 public:
  struct Options {
    // Largest single Get Log Page; a multiple of 1024, at least 1024 (the transfer is also
    // bounded by MDTS: pass min(64 KiB, MaxTransferBytes) rounded down to 1024).
    uint32_t max_chunk_bytes = 64 * 1024;
    // Attempts (header, entries, header) before giving up on a changing log.
    int max_attempts = 10;
    // Records above this are kDataLoss (at most kDiscoveryLogMaxRecords).
    uint64_t max_records = kDiscoveryLogMaxRecords;
  };
  struct LogRead {
    uint64_t offset = 0;  // LPO, bytes
    uint32_t length = 0;  // bytes (0 once done or failed)
  };
  enum class State { kReadHeader, kReadEntries, kVerifyHeader, kDone, kFailed };
  static const char* ToString(State state);

  // Default options.
  DiscoveryLogReader();
  // kInvalidArgument for options out of range.
  static absl::StatusOr<DiscoveryLogReader> Create(const Options& options);

  // The read to issue now.
  LogRead NextRead() const;
  // Data of the read NextRead() returned; `len` must equal its length (kInvalidArgument otherwise,
  // and kFailedPrecondition once done or failed). A malformed log or a log that keeps changing
  // moves the reader to kFailed and returns the error (also kept in status()).
  absl::Status OnData(const uint8_t* data, size_t len);

  State state() const { return state_; }
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed; }
  const absl::Status& status() const { return status_; }
  // Valid once done().
  const std::vector<DiscoveryEntry>& entries() const { return entries_; }
  uint64_t generation() const { return genctr_; }
  // Attempts started so far (1 for a log that did not change while being read).
  int attempts() const { return attempts_; }

 private:
  explicit DiscoveryLogReader(const Options& options);
  void SetState(State next);
  absl::Status Fail(absl::Status status);
  // Takes a header just read: starts reading its entries, or finishes when NUMREC is 0.
  absl::Status StartAttempt(const uint8_t* header);

  Options options_;
  State state_ = State::kReadHeader;
  absl::Status status_;
  int attempts_ = 0;
  uint64_t genctr_ = 0;
  uint64_t numrec_ = 0;
  // Header of the current attempt followed by the entries read so far.
  std::vector<uint8_t> log_;
  size_t entries_read_ = 0;  // bytes of entries received in this attempt
  std::vector<DiscoveryEntry> entries_;
};

// --- ANA log -------------------------------------------------------------------------------------
inline constexpr uint8_t kAnaOptimized = 0x01;
inline constexpr uint8_t kAnaNonOptimized = 0x02;
inline constexpr uint8_t kAnaInaccessible = 0x03;
inline constexpr uint8_t kAnaPersistentLoss = 0x04;
inline constexpr uint8_t kAnaChange = 0x0F;
// Get Log Page LSP bit 0 for the ANA log: Return Groups Only.
inline constexpr uint8_t kAnaLspRgo = 0x01;

// "optimized", "non-optimized", "inaccessible", "persistent-loss", "change", or "invalid".
const char* AnaStateName(uint8_t state);

// ANA Group Descriptor (Base 2.0 Figure 231).
struct AnaGroup {
  uint32_t grpid = 0;           // ANAGRPID (byte 0)
  uint32_t nnsids = 0;          // NNSIDs (byte 4), as reported
  uint64_t chgcnt = 0;          // CHGCNT (byte 8)
  uint8_t state = 0;            // ANA state (byte 16, bits 3:0)
  std::vector<uint32_t> nsids;  // NSIDs (byte 32); empty for a Return Groups Only log
};

struct AnaLog {
  uint64_t chgcnt = 0;  // CHGCNT (byte 0)
  std::vector<AnaGroup> groups;
};

// ANA log (LID 0Ch): 16-byte header (CHGCNT, NGRPS), then NGRPS descriptors of 32 bytes plus, with
// `with_nsids`, NNSIDs x 4 bytes of NSIDs. Pass with_nsids = false for a log read with RGO set,
// where no NSID lists follow the descriptors. Rejects a descriptor that does not fit in `len`,
// ANAGRPID 0, a group listed twice, NSID 0 or FFFFFFFFh, and a state outside 01h-04h, 0Fh. Bytes
// beyond the last group are ignored.
absl::StatusOr<AnaLog> ParseAnaLog(const uint8_t* data, size_t len, bool with_nsids = true);

// Bytes that an ANA log can occupy at most: 16 + groups x 32 + nn x 4, where `groups` is NANAGRPID
// (or ANAGRPMAX) and `nn` the NN of Identify Controller. Saturates at UINT32_MAX.
uint32_t AnaLogMaxBytes(uint32_t groups, uint32_t nn);

}  // namespace nvmf_ublk::nvme

#endif  // NVMF_UBLK_NVME_LOG_PAGES_H_
