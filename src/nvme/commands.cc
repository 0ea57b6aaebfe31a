#include "nvme/commands.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace nvmf_ublk::nvme {
namespace {

Sqe NewSqe(uint8_t opcode) {
  Sqe sqe;
  std::memset(&sqe, 0, sizeof(sqe));
  sqe.opcode = opcode;
  sqe.flags = kSqeFlagsPsdtSgl;
  return sqe;
}

FabricsSqe* AsFabrics(Sqe& sqe) { return reinterpret_cast<FabricsSqe*>(&sqe); }
const FabricsSqe* AsFabrics(const Sqe& sqe) { return reinterpret_cast<const FabricsSqe*>(&sqe); }

Sqe NewFabrics(FabricsType type) {
  Sqe sqe = NewSqe(kFabricsOpcode);
  AsFabrics(sqe)->fctype = static_cast<uint8_t>(type);
  return sqe;
}

absl::Status ValidateNqn(std::string_view nqn, const char* what) {
  absl::string_view n(nqn.data(), nqn.size());
  if (n.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (n.size() > kNqnMaxLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", n, "' is longer than ", kNqnMaxLength, " bytes"));
  }
  if (!absl::StartsWith(n, "nqn.")) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", n, "' does not start with 'nqn.'"));
  }
  for (char c : n) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(what, " contains a control character"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

DataDirection DirectionOf(const Sqe& sqe) {
  uint8_t bits = sqe.opcode == kFabricsOpcode ? AsFabrics(sqe)->fctype : sqe.opcode;
  return static_cast<DataDirection>(bits & 0x3);
}

const char* CommandName(const Sqe& sqe, bool admin_queue) {
  if (sqe.opcode == kFabricsOpcode) {
    switch (static_cast<FabricsType>(AsFabrics(sqe)->fctype)) {
      case FabricsType::kPropertySet:
        return "Property Set";
      case FabricsType::kConnect:
        return "Connect";
      case FabricsType::kPropertyGet:
        return "Property Get";
      case FabricsType::kAuthSend:
        return "Authentication Send";
      case FabricsType::kAuthReceive:
        return "Authentication Receive";
      case FabricsType::kDisconnect:
        return "Disconnect";
    }
    return "Fabrics";
  }
  if (!admin_queue) {
    switch (static_cast<IoOpcode>(sqe.opcode)) {
      case IoOpcode::kFlush:
        return "Flush";
      case IoOpcode::kWrite:
        return "Write";
      case IoOpcode::kRead:
        return "Read";
      case IoOpcode::kWriteZeroes:
        return "Write Zeroes";
      case IoOpcode::kDatasetManagement:
        return "Dataset Management";
    }
    return "I/O Command";
  }
  switch (static_cast<AdminOpcode>(sqe.opcode)) {
    case AdminOpcode::kGetLogPage:
      return "Get Log Page";
    case AdminOpcode::kIdentify:
      return "Identify";
    case AdminOpcode::kAbort:
      return "Abort";
    case AdminOpcode::kSetFeatures:
      return "Set Features";
    case AdminOpcode::kGetFeatures:
      return "Get Features";
    case AdminOpcode::kAsyncEventRequest:
      return "Asynchronous Event Request";
    case AdminOpcode::kKeepAlive:
      return "Keep Alive";
    case AdminOpcode::kFabrics:
      return "Fabrics";
  }
  return "Command";
}

Sqe BuildConnect(uint16_t qid, uint16_t sqsize, uint32_t kato_ms, uint8_t cattr) {
  Sqe sqe = NewFabrics(FabricsType::kConnect);
  uint8_t* ts = AsFabrics(sqe)->ts;
  StoreLe16(ts + 0, 0);           // RECFMT (byte 40)
  StoreLe16(ts + 2, qid);         // QID (byte 42)
  StoreLe16(ts + 4, sqsize - 1);  // SQSIZE, 0-based (byte 44)
  ts[6] = cattr;                  // CATTR (byte 46)
  StoreLe32(ts + 8, kato_ms);     // KATO (byte 48)
  return sqe;
}

absl::StatusOr<ConnectData> BuildConnectData(const uint8_t (&hostid)[16], uint16_t cntlid,
                                             std::string_view subnqn, std::string_view hostnqn) {
  if (absl::Status s = ValidateNqn(subnqn, "subsystem NQN"); !s.ok()) return s;
  if (absl::Status s = ValidateNqn(hostnqn, "host NQN"); !s.ok()) return s;
  ConnectData data;
  std::memset(&data, 0, sizeof(data));
  std::memcpy(data.hostid, hostid, sizeof(data.hostid));
  data.cntlid.set(cntlid);
  std::memcpy(data.subnqn, subnqn.data(), subnqn.size());
  std::memcpy(data.hostnqn, hostnqn.data(), hostnqn.size());
  return data;
}

ConnectResult ParseConnectResult(const Cqe& cqe) {
  uint32_t dw0 = cqe.dw0.get();
  return ConnectResult{static_cast<uint16_t>(dw0 & 0xFFFF), static_cast<uint16_t>(dw0 >> 16)};
}

namespace {
Sqe BuildAuth(FabricsType type, uint8_t secp, uint8_t spsp0, uint8_t spsp1, uint32_t len) {
  Sqe sqe = NewFabrics(type);
  uint8_t* ts = AsFabrics(sqe)->ts;
  ts[0] = 0;               // NSSF (byte 40)
  ts[1] = spsp0;           // byte 41
  ts[2] = spsp1;           // byte 42
  ts[3] = secp;            // byte 43
  StoreLe32(ts + 4, len);  // TL / AL (byte 44)
  return sqe;
}
}  // namespace

Sqe BuildAuthSend(uint8_t secp, uint8_t spsp0, uint8_t spsp1, uint32_t tl) {
  return BuildAuth(FabricsType::kAuthSend, secp, spsp0, spsp1, tl);
}

Sqe BuildAuthReceive(uint8_t secp, uint8_t spsp0, uint8_t spsp1, uint32_t al) {
  return BuildAuth(FabricsType::kAuthReceive, secp, spsp0, spsp1, al);
}

Sqe BuildPropertyGet(Property property) {
  Sqe sqe = NewFabrics(FabricsType::kPropertyGet);
  uint8_t* ts = AsFabrics(sqe)->ts;
  ts[0] = PropertyIs64Bit(property) ? 1 : 0;           // ATTRIB: size (byte 40)
  StoreLe32(ts + 4, static_cast<uint32_t>(property));  // OFST (byte 44)
  return sqe;
}

Sqe BuildPropertySet(Property property, uint64_t value) {
  Sqe sqe = NewFabrics(FabricsType::kPropertySet);
  uint8_t* ts = AsFabrics(sqe)->ts;
  ts[0] = PropertyIs64Bit(property) ? 1 : 0;
  StoreLe32(ts + 4, static_cast<uint32_t>(property));
  StoreLe64(ts + 8, value);  // VALUE (byte 48)
  return sqe;
}

uint64_t PropertyValue(const Cqe& cqe) {
  return uint64_t{cqe.dw0.get()} | (uint64_t{cqe.dw1.get()} << 32);
}

Sqe BuildIdentify(IdentifyCns cns, uint32_t nsid) {
  Sqe sqe = NewSqe(static_cast<uint8_t>(AdminOpcode::kIdentify));
  sqe.nsid.set(nsid);
  sqe.cdw10.set(static_cast<uint8_t>(cns));
  return sqe;
}

Sqe BuildGetLogPage(LogPageId lid, uint32_t nsid, uint64_t offset, uint32_t length, uint8_t lsp,
                    bool rae) {
  Sqe sqe = NewSqe(static_cast<uint8_t>(AdminOpcode::kGetLogPage));
  sqe.nsid.set(nsid);
  const uint32_t numd = length / 4 - 1;  // 0-based dword count
  sqe.cdw10.set(static_cast<uint8_t>(lid) | (uint32_t{lsp & 0x7Fu} << 8) | (rae ? 1u << 15 : 0) |
                ((numd & 0xFFFF) << 16));
  sqe.cdw11.set(numd >> 16);                           // NUMDU; LSI = 0
  sqe.cdw12.set(static_cast<uint32_t>(offset));        // LPOL
  sqe.cdw13.set(static_cast<uint32_t>(offset >> 32));  // LPOU
  return sqe;
}

Sqe BuildSetFeatures(FeatureId fid, uint32_t cdw11) {
  Sqe sqe = NewSqe(static_cast<uint8_t>(AdminOpcode::kSetFeatures));
  sqe.cdw10.set(static_cast<uint8_t>(fid));
  sqe.cdw11.set(cdw11);
  return sqe;
}

Sqe BuildGetFeatures(FeatureId fid) {
  Sqe sqe = NewSqe(static_cast<uint8_t>(AdminOpcode::kGetFeatures));
  sqe.cdw10.set(static_cast<uint8_t>(fid));
  return sqe;
}

Sqe BuildSetNumberOfQueues(uint16_t count) {
  const uint32_t n = count ? count - 1u : 0u;  // NSQR / NCQR are 0-based
  return BuildSetFeatures(FeatureId::kNumberOfQueues, n | (n << 16));
}

uint32_t GrantedQueueCount(const Cqe& cqe) {
  const uint32_t dw0 = cqe.dw0.get();
  const uint32_t nsqa = dw0 & 0xFFFF, ncqa = dw0 >> 16;
  return (nsqa < ncqa ? nsqa : ncqa) + 1;
}

Sqe BuildKeepAlive() { return NewSqe(static_cast<uint8_t>(AdminOpcode::kKeepAlive)); }
Sqe BuildAsyncEventRequest() {
  return NewSqe(static_cast<uint8_t>(AdminOpcode::kAsyncEventRequest));
}

Sqe BuildAbort(uint16_t sqid, uint16_t cid) {
  Sqe sqe = NewSqe(static_cast<uint8_t>(AdminOpcode::kAbort));
  sqe.cdw10.set(uint32_t{sqid} | (uint32_t{cid} << 16));
  return sqe;
}

bool AbortSucceeded(const Cqe& cqe) { return (cqe.dw0.get() & 1) == 0; }

AsyncEvent ParseAsyncEvent(const Cqe& cqe) {
  const uint32_t dw0 = cqe.dw0.get();
  return AsyncEvent{static_cast<uint8_t>(dw0 & 0x7), static_cast<uint8_t>((dw0 >> 8) & 0xFF),
                    static_cast<uint8_t>((dw0 >> 16) & 0xFF)};
}

const char* AsyncEventName(const AsyncEvent& e) {
  switch (e.type) {
    case kAerTypeError:
      return "error";
    case kAerTypeSmart:
      return "SMART/health";
    case kAerTypeNotice:
      switch (e.info) {
        case kAerNoticeNamespaceAttribute:
          return "namespace attribute changed";
        case kAerNoticeFirmwareActivation:
          return "firmware activation starting";
        case kAerNoticeAnaChange:
          return "ANA change";
        case kAerNoticeDiscoveryLogChange:
          return "discovery log page change";
      }
      return "notice";
    case kAerTypeIoCommandSpecific:
      return "I/O command set specific";
    case kAerTypeVendor:
      return "vendor specific";
  }
  return "unknown";
}

namespace {
Sqe BuildRw(IoOpcode op, uint32_t nsid, uint64_t slba, uint32_t nlb, uint32_t cdw12_flags) {
  Sqe sqe = NewSqe(static_cast<uint8_t>(op));
  sqe.nsid.set(nsid);
  sqe.cdw10.set(static_cast<uint32_t>(slba));
  sqe.cdw11.set(static_cast<uint32_t>(slba >> 32));
  sqe.cdw12.set(((nlb - 1) & 0xFFFF) | cdw12_flags);
  return sqe;
}
}  // namespace

Sqe BuildRead(uint32_t nsid, uint64_t slba, uint32_t nlb) {
  return BuildRw(IoOpcode::kRead, nsid, slba, nlb, 0);
}

Sqe BuildWrite(uint32_t nsid, uint64_t slba, uint32_t nlb, bool fua) {
  return BuildRw(IoOpcode::kWrite, nsid, slba, nlb, fua ? kRwFua : 0);
}

Sqe BuildFlush(uint32_t nsid) {
  Sqe sqe = NewSqe(static_cast<uint8_t>(IoOpcode::kFlush));
  sqe.nsid.set(nsid);
  return sqe;
}

Sqe BuildWriteZeroes(uint32_t nsid, uint64_t slba, uint32_t nlb, bool deallocate, bool fua) {
  return BuildRw(IoOpcode::kWriteZeroes, nsid, slba, nlb,
                 (deallocate ? kWriteZeroesDeac : 0) | (fua ? kRwFua : 0));
}

Sqe BuildDatasetManagement(uint32_t nsid, uint32_t nr_ranges, bool deallocate) {
  Sqe sqe = NewSqe(static_cast<uint8_t>(IoOpcode::kDatasetManagement));
  sqe.nsid.set(nsid);
  sqe.cdw10.set((nr_ranges - 1) & 0xFF);  // NR, 0-based
  sqe.cdw11.set(deallocate ? kDsmDeallocate : 0);
  return sqe;
}

}  // namespace nvmf_ublk::nvme
