#include "nvme/log_pages.h"

#include <nvme/types.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/endian.h"
#include "base/log.h"
#include "base/status.h"
#include "nvme/identify.h"

namespace nvmf_ublk::nvme {

// libnvme's layouts against NVMe-oF 1.1 Figures 38-40 and Base 2.0 Figures 230-231.
static_assert(sizeof(nvmf_discovery_log) == kDiscoveryLogHeaderBytes);
static_assert(offsetof(nvmf_discovery_log, genctr) == 0);
static_assert(offsetof(nvmf_discovery_log, numrec) == 8);
static_assert(offsetof(nvmf_discovery_log, recfmt) == 16);
static_assert(sizeof(nvmf_disc_log_entry) == kDiscoveryLogEntryBytes);
static_assert(offsetof(nvmf_disc_log_entry, trtype) == 0);
static_assert(offsetof(nvmf_disc_log_entry, adrfam) == 1);
static_assert(offsetof(nvmf_disc_log_entry, subtype) == 2);
static_assert(offsetof(nvmf_disc_log_entry, treq) == 3);
static_assert(offsetof(nvmf_disc_log_entry, portid) == 4);
static_assert(offsetof(nvmf_disc_log_entry, cntlid) == 6);
static_assert(offsetof(nvmf_disc_log_entry, asqsz) == 8);
static_assert(offsetof(nvmf_disc_log_entry, eflags) == 10);
static_assert(offsetof(nvmf_disc_log_entry, trsvcid) == 32);
static_assert(sizeof(nvmf_disc_log_entry::trsvcid) == 32);
static_assert(offsetof(nvmf_disc_log_entry, subnqn) == 256);
static_assert(sizeof(nvmf_disc_log_entry::subnqn) == 256);
static_assert(offsetof(nvmf_disc_log_entry, traddr) == 512);
static_assert(sizeof(nvmf_disc_log_entry::traddr) == 256);
static_assert(offsetof(nvmf_disc_log_entry, tsas) == 768);
static_assert(sizeof(nvme_ana_log) == 16);
static_assert(offsetof(nvme_ana_log, chgcnt) == 0);
static_assert(offsetof(nvme_ana_log, ngrps) == 8);
static_assert(sizeof(nvme_ana_group_desc) == 32);
static_assert(offsetof(nvme_ana_group_desc, grpid) == 0);
static_assert(offsetof(nvme_ana_group_desc, nnsids) == 4);
static_assert(offsetof(nvme_ana_group_desc, chgcnt) == 8);
static_assert(offsetof(nvme_ana_group_desc, state) == 16);
static_assert(offsetof(nvme_ana_group_desc, nsids) == 32);
static_assert(kTrtypeTcp == NVMF_TRTYPE_TCP && kSubtypeDiscoveryReferral == NVME_NQN_DISC &&
              kSubtypeCurrentDiscovery == NVME_NQN_CURR);
static_assert(kAnaChange == NVME_ANA_STATE_CHANGE &&
              kAnaPersistentLoss == NVME_ANA_STATE_PERSISTENT_LOSS);

namespace {

absl::StatusOr<DiscoveryEntry> ParseDiscoveryEntry(const uint8_t* e, uint64_t index) {
  using T = nvmf_disc_log_entry;
  if (std::all_of(e, e + kDiscoveryLogEntryBytes, [](uint8_t b) { return b == 0; })) {
    // What a controller returns past the end of its log (nvmet and nvmf-target zero-fill).
    return absl::DataLossError(
        absl::StrCat("discovery log entry ", index,
                     " is all zeroes: NUMREC counts more records than the controller returned"));
  }
  DiscoveryEntry entry;
  entry.trtype = e[offsetof(T, trtype)];
  entry.adrfam = e[offsetof(T, adrfam)];
  entry.subtype = e[offsetof(T, subtype)];
  entry.treq = e[offsetof(T, treq)];
  entry.portid = LoadLe16(e + offsetof(T, portid));
  entry.cntlid = LoadLe16(e + offsetof(T, cntlid));
  entry.asqsz = LoadLe16(e + offsetof(T, asqsz));
  entry.eflags = LoadLe16(e + offsetof(T, eflags));
  entry.tcp_sectype = e[offsetof(T, tsas)];
  auto text = [&](size_t off, size_t size, const char* what, bool utf8,
                  std::string* out) -> absl::Status {
    ASSIGN_OR_RETURN(*out,
                     ParseTextField(reinterpret_cast<const char*>(e + off), size,
                                    absl::StrCat("discovery log entry ", index, " ", what), utf8));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(text(offsetof(T, trsvcid), sizeof(T::trsvcid), "TRSVCID", false, &entry.trsvcid));
  RETURN_IF_ERROR(text(offsetof(T, subnqn), sizeof(T::subnqn), "SUBNQN", true, &entry.subnqn));
  RETURN_IF_ERROR(text(offsetof(T, traddr), sizeof(T::traddr), "TRADDR", false, &entry.traddr));
  if (entry.subnqn.empty()) {
    return absl::DataLossError(absl::StrCat("discovery log entry ", index, " has an empty SUBNQN"));
  }
  return entry;
}

}  // namespace

const char* TrtypeName(uint8_t trtype) {
  switch (trtype) {
    case kTrtypeRdma:
      return "rdma";
    case kTrtypeFc:
      return "fc";
    case kTrtypeTcp:
      return "tcp";
    case kTrtypeLoop:
      return "loop";
  }
  return "unknown";
}

const char* AdrfamName(uint8_t adrfam) {
  switch (adrfam) {
    case NVMF_ADDR_FAMILY_PCI:
      return "pci";
    case NVMF_ADDR_FAMILY_IP4:
      return "ipv4";
    case NVMF_ADDR_FAMILY_IP6:
      return "ipv6";
    case NVMF_ADDR_FAMILY_IB:
      return "ib";
    case NVMF_ADDR_FAMILY_FC:
      return "fc";
    case NVMF_ADDR_FAMILY_LOOP:
      return "loop";
  }
  return "unknown";
}

const char* SubtypeName(uint8_t subtype) {
  switch (subtype) {
    case kSubtypeDiscoveryReferral:
      return "referral";
    case kSubtypeNvme:
      return "nvme subsystem";
    case kSubtypeCurrentDiscovery:
      return "current discovery subsystem";
  }
  return "unknown";
}

absl::StatusOr<DiscoveryLogHeader> ParseDiscoveryLogHeader(const uint8_t* data, size_t len,
                                                           uint64_t max_records) {
  if (data == nullptr) len = 0;
  if (len < kDiscoveryLogHeaderBytes) {
    return absl::DataLossError(
        absl::StrCat("discovery log header is ", len, " bytes, need ", kDiscoveryLogHeaderBytes));
  }
  using T = nvmf_discovery_log;
  DiscoveryLogHeader h;
  h.genctr = LoadLe64(data + offsetof(T, genctr));
  h.numrec = LoadLe64(data + offsetof(T, numrec));
  h.recfmt = LoadLe16(data + offsetof(T, recfmt));
  if (h.recfmt != 0) {
    return absl::DataLossError(
        absl::StrCat("discovery log RECFMT is ", h.recfmt, ", only format 0 is known"));
  }
  if (h.numrec > max_records) {
    return absl::DataLossError(absl::StrCat("discovery log NUMREC ", h.numrec,
                                            " exceeds the limit of ", max_records, " records"));
  }
  return h;
}

absl::StatusOr<DiscoveryLog> ParseDiscoveryLog(const uint8_t* data, size_t len) {
  if (data == nullptr) len = 0;
  DiscoveryLog log;
  ASSIGN_OR_RETURN(log.header, ParseDiscoveryLogHeader(data, len));
  // NUMREC <= kDiscoveryLogMaxRecords: no overflow.
  const uint64_t need = kDiscoveryLogHeaderBytes + log.header.numrec * kDiscoveryLogEntryBytes;
  if (len < need) {
    return absl::DataLossError(absl::StrCat("discovery log with NUMREC ", log.header.numrec,
                                            " needs ", need, " bytes, got ", len));
  }
  log.entries.reserve(log.header.numrec);
  for (uint64_t i = 0; i < log.header.numrec; ++i) {
    ASSIGN_OR_RETURN(
        DiscoveryEntry entry,
        ParseDiscoveryEntry(data + kDiscoveryLogHeaderBytes + i * kDiscoveryLogEntryBytes, i));
    log.entries.push_back(std::move(entry));
  }
  return log;
}

// --- DiscoveryLogReader --------------------------------------------------------------------------

const char* DiscoveryLogReader::ToString(State state) {
  switch (state) {
    case State::kReadHeader:
      return "read-header";
    case State::kReadEntries:
      return "read-entries";
    case State::kVerifyHeader:
      return "verify-header";
    case State::kDone:
      return "done";
    case State::kFailed:
      return "failed";
  }
  return "?";
}

DiscoveryLogReader::DiscoveryLogReader() : DiscoveryLogReader(Options{}) {}

DiscoveryLogReader::DiscoveryLogReader(const Options& options) : options_(options) {}

absl::StatusOr<DiscoveryLogReader> DiscoveryLogReader::Create(const Options& options) {
  if (options.max_chunk_bytes < kDiscoveryLogEntryBytes ||
      options.max_chunk_bytes % kDiscoveryLogEntryBytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat("discovery log max_chunk_bytes ",
                                                   options.max_chunk_bytes,
                                                   " is not a positive multiple of 1024"));
  }
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("discovery log max_attempts ", options.max_attempts, " is below 1"));
  }
  if (options.max_records > kDiscoveryLogMaxRecords) {
    return absl::InvalidArgumentError(absl::StrCat(
        "discovery log max_records ", options.max_records, " exceeds ", kDiscoveryLogMaxRecords));
  }
  return DiscoveryLogReader(options);
}

void DiscoveryLogReader::SetState(State next) {
  NLOG(DEBUG) << "discovery log reader: " << ToString(state_) << " -> " << ToString(next);
  state_ = next;
}

absl::Status DiscoveryLogReader::Fail(absl::Status status) {
  status_ = status;
  entries_.clear();
  log_.clear();
  log_.shrink_to_fit();
  SetState(State::kFailed);
  return status;
}

DiscoveryLogReader::LogRead DiscoveryLogReader::NextRead() const {
  switch (state_) {
    case State::kReadHeader:
    case State::kVerifyHeader:
      return {0, kDiscoveryLogHeaderBytes};
    case State::kReadEntries: {
      const uint64_t total = numrec_ * kDiscoveryLogEntryBytes;
      const uint64_t left = total - entries_read_;
      return {kDiscoveryLogHeaderBytes + entries_read_,
              static_cast<uint32_t>(std::min<uint64_t>(left, options_.max_chunk_bytes))};
    }
    case State::kDone:
    case State::kFailed:
      break;
  }
  return {0, 0};
}

absl::Status DiscoveryLogReader::StartAttempt(const uint8_t* header) {
  ++attempts_;
  auto h = ParseDiscoveryLogHeader(header, kDiscoveryLogHeaderBytes, options_.max_records);
  if (!h.ok()) return Fail(h.status());
  genctr_ = h->genctr;
  numrec_ = h->numrec;
  entries_read_ = 0;
  log_.assign(header, header + kDiscoveryLogHeaderBytes);
  if (numrec_ == 0) {
    // No entries: nothing could have been read across two generations.
    log_.clear();
    entries_.clear();
    SetState(State::kDone);
    return absl::OkStatus();
  }
  log_.resize(kDiscoveryLogHeaderBytes + numrec_ * kDiscoveryLogEntryBytes);
  SetState(State::kReadEntries);
  return absl::OkStatus();
}

absl::Status DiscoveryLogReader::OnData(const uint8_t* data, size_t len) {
  if (state_ == State::kDone || state_ == State::kFailed) {
    return absl::FailedPreconditionError(
        absl::StrCat("discovery log reader got data while ", ToString(state_)));
  }
  const LogRead expected = NextRead();
  if (data == nullptr || len != expected.length) {
    return absl::InvalidArgumentError(absl::StrCat("discovery log read at offset ", expected.offset,
                                                   " expects ", expected.length, " bytes, got ",
                                                   data == nullptr ? 0 : len));
  }
  switch (state_) {
    case State::kReadHeader:
      return StartAttempt(data);
    case State::kReadEntries:
      std::memcpy(log_.data() + kDiscoveryLogHeaderBytes + entries_read_, data, len);
      entries_read_ += len;
      if (entries_read_ == numrec_ * kDiscoveryLogEntryBytes) SetState(State::kVerifyHeader);
      return absl::OkStatus();
    case State::kVerifyHeader: {
      // Only GENCTR and NUMREC matter here; RECFMT and limits are checked by StartAttempt.
      const uint64_t genctr = LoadLe64(data + offsetof(nvmf_discovery_log, genctr));
      const uint64_t numrec = LoadLe64(data + offsetof(nvmf_discovery_log, numrec));
      if (genctr != genctr_) {
        if (attempts_ >= options_.max_attempts) {
          return Fail(
              absl::UnavailableError(absl::StrCat("discovery log keeps changing: generation ",
                                                  genctr, " after ", attempts_, " attempts")));
        }
        NLOG(INFO) << "discovery log changed while being read (generation " << genctr_ << " -> "
                   << genctr << "), reading it again";
        return StartAttempt(data);
      }
      if (numrec != numrec_) {
        return Fail(
            absl::DataLossError(absl::StrCat("discovery log NUMREC changed from ", numrec_, " to ",
                                             numrec, " within generation ", genctr_)));
      }
      auto log = ParseDiscoveryLog(log_.data(), log_.size());
      if (!log.ok()) return Fail(log.status());
      entries_ = std::move(log->entries);
      log_.clear();
      log_.shrink_to_fit();
      SetState(State::kDone);
      return absl::OkStatus();
    }
    case State::kDone:
    case State::kFailed:
      break;
  }
  return absl::InternalError("unreachable");
}

// --- ANA log -------------------------------------------------------------------------------------

const char* AnaStateName(uint8_t state) {
  switch (state) {
    case kAnaOptimized:
      return "optimized";
    case kAnaNonOptimized:
      return "non-optimized";
    case kAnaInaccessible:
      return "inaccessible";
    case kAnaPersistentLoss:
      return "persistent-loss";
    case kAnaChange:
      return "change";
  }
  return "invalid";
}

absl::StatusOr<AnaLog> ParseAnaLog(const uint8_t* data, size_t len, bool with_nsids) {
  if (data == nullptr) len = 0;
  if (len < sizeof(nvme_ana_log)) {
    return absl::DataLossError(
        absl::StrCat("ANA log is ", len, " bytes, need ", sizeof(nvme_ana_log), " for its header"));
  }
  AnaLog log;
  log.chgcnt = LoadLe64(data + offsetof(nvme_ana_log, chgcnt));
  const uint16_t ngrps = LoadLe16(data + offsetof(nvme_ana_log, ngrps));
  // Every descriptor takes at least 32 bytes: bound the reservation by what the buffer can hold.
  log.groups.reserve(
      std::min<size_t>(ngrps, (len - sizeof(nvme_ana_log)) / sizeof(nvme_ana_group_desc)));
  using D = nvme_ana_group_desc;
  size_t off = sizeof(nvme_ana_log);
  for (uint32_t g = 0; g < ngrps; ++g) {
    if (len - off < sizeof(D)) {
      return absl::DataLossError(absl::StrCat("ANA log group descriptor ", g, " of ", ngrps,
                                              " at offset ", off, " is truncated (", len - off,
                                              " bytes left, need ", sizeof(D), ")"));
    }
    const uint8_t* d = data + off;
    AnaGroup group;
    group.grpid = LoadLe32(d + offsetof(D, grpid));
    group.nnsids = LoadLe32(d + offsetof(D, nnsids));
    group.chgcnt = LoadLe64(d + offsetof(D, chgcnt));
    group.state = d[offsetof(D, state)];
    if (group.grpid == 0) {
      return absl::DataLossError(absl::StrCat("ANA log group descriptor ", g, " has ANAGRPID 0"));
    }
    switch (group.state) {
      case kAnaOptimized:
      case kAnaNonOptimized:
      case kAnaInaccessible:
      case kAnaPersistentLoss:
      case kAnaChange:
        break;
      default:
        return absl::DataLossError(
            absl::StrCat("ANA log group ", group.grpid, " has invalid ANA state ", group.state));
    }
    off += sizeof(D);
    if (with_nsids) {
      const uint64_t nsid_bytes = uint64_t{group.nnsids} * 4;
      if (len - off < nsid_bytes) {
        return absl::DataLossError(absl::StrCat("ANA log group ", group.grpid, " lists ",
                                                group.nnsids, " NSIDs (", nsid_bytes,
                                                " bytes) but only ", len - off, " bytes remain"));
      }
      group.nsids.reserve(group.nnsids);
      for (uint32_t i = 0; i < group.nnsids; ++i) {
        const uint32_t nsid = LoadLe32(data + off + 4 * size_t{i});
        if (nsid == 0 || nsid == 0xFFFFFFFF) {
          return absl::DataLossError(absl::StrCat("ANA log group ", group.grpid, " NSID entry ", i,
                                                  " is invalid (", nsid, ")"));
        }
        group.nsids.push_back(nsid);
      }
      off += nsid_bytes;
    }
    log.groups.push_back(std::move(group));
  }
  // A group listed twice would leave its state ambiguous.
  std::vector<uint32_t> ids;
  ids.reserve(log.groups.size());
  for (const AnaGroup& group : log.groups) ids.push_back(group.grpid);
  std::sort(ids.begin(), ids.end());
  auto dup = std::adjacent_find(ids.begin(), ids.end());
  if (dup != ids.end()) {
    return absl::DataLossError(absl::StrCat("ANA log lists group ", *dup, " twice"));
  }
  return log;
}

uint32_t AnaLogMaxBytes(uint32_t groups, uint32_t nn) {
  const uint64_t bytes =
      sizeof(nvme_ana_log) + uint64_t{groups} * sizeof(nvme_ana_group_desc) + uint64_t{nn} * 4;
  return static_cast<uint32_t>(std::min<uint64_t>(bytes, std::numeric_limits<uint32_t>::max()));
}

}  // namespace nvmf_ublk::nvme
