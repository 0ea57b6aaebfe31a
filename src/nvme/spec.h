// NVMe wire structures and constants used by an NVMe over Fabrics host: the 64-byte submission
// queue entry, the 16-byte completion queue entry, SGL descriptors, opcodes, fabrics command types,
// controller properties and status codes.
//
// References: NVM Express Base Specification 2.0 (§3.3.3 SQE, §3.3.3.2 CQE, §4.3 SGL, §5 admin
// commands), NVMe over Fabrics 1.1 (§3.3 fabrics commands, §3.5 Connect), NVM Command Set 1.0 (§3
// I/O commands). Larger log and identify pages use libnvme's structures (nvme/types.h); see
// identify.h.
//
// Every structure is plain data built from Le16/Le32/Le64 (alignment 1), with static_asserts on its
// size and each field's offset.
#ifndef NVMF_UBLK_NVME_SPEC_H_
#define NVMF_UBLK_NVME_SPEC_H_

#include <cstddef>
#include <cstdint>

#include "base/endian.h"

namespace nvmf_ublk::nvme {

// --- SGL descriptor (Base 2.0 §4.3.2), 16 bytes -------------------------------------------------
// SGL Identifier (byte 15): descriptor type in bits 7:4, sub type in bits 3:0.
inline constexpr uint8_t kSglTypeDataBlock = 0x0;
inline constexpr uint8_t kSglTypeTransportDataBlock = 0x5;
inline constexpr uint8_t kSglSubtypeAddress = 0x0;
inline constexpr uint8_t kSglSubtypeOffset = 0x1;
inline constexpr uint8_t kSglSubtypeTransport = 0xA;
// In-capsule data: Data Block, sub type Offset (address = offset into the capsule's data).
inline constexpr uint8_t kSglIdInCapsule = (kSglTypeDataBlock << 4) | kSglSubtypeOffset;
// Data moved by the transport (R2T/H2CData, C2HData): Transport SGL Data Block, sub type Transport.
inline constexpr uint8_t kSglIdTransport = (kSglTypeTransportDataBlock << 4) | kSglSubtypeTransport;

struct SglDescriptor {
  Le64 address;  // ADDRESS (offset for in-capsule data)
  Le32 length;   // LENGTH in bytes
  uint8_t rsvd12[3];
  uint8_t sgl_id;  // SGL Identifier: type << 4 | subtype
};
static_assert(sizeof(SglDescriptor) == 16);
static_assert(offsetof(SglDescriptor, address) == 0);
static_assert(offsetof(SglDescriptor, length) == 8);
static_assert(offsetof(SglDescriptor, sgl_id) == 15);

// --- Submission queue entry (Base 2.0 §3.3.3.1, Figure 87), 64 bytes ----------------------------
// Byte 1 (FLAGS): FUSE bits 1:0, PSDT bits 7:6. Fabrics requires SGLs: PSDT = 01b.
inline constexpr uint8_t kSqeFlagsPsdtSgl = 0x1 << 6;

struct Sqe {
  uint8_t opcode;  // OPC
  uint8_t flags;   // FUSE, PSDT
  Le16 cid;        // Command Identifier
  Le32 nsid;       // Namespace Identifier
  Le32 cdw2;
  Le32 cdw3;
  Le64 mptr;           // Metadata Pointer
  SglDescriptor dptr;  // SGL Entry 1
  Le32 cdw10;
  Le32 cdw11;
  Le32 cdw12;
  Le32 cdw13;
  Le32 cdw14;
  Le32 cdw15;
};
static_assert(sizeof(Sqe) == 64);
static_assert(offsetof(Sqe, opcode) == 0);
static_assert(offsetof(Sqe, flags) == 1);
static_assert(offsetof(Sqe, cid) == 2);
static_assert(offsetof(Sqe, nsid) == 4);
static_assert(offsetof(Sqe, cdw2) == 8);
static_assert(offsetof(Sqe, cdw3) == 12);
static_assert(offsetof(Sqe, mptr) == 16);
static_assert(offsetof(Sqe, dptr) == 24);
static_assert(offsetof(Sqe, cdw10) == 40);
static_assert(offsetof(Sqe, cdw11) == 44);
static_assert(offsetof(Sqe, cdw12) == 48);
static_assert(offsetof(Sqe, cdw13) == 52);
static_assert(offsetof(Sqe, cdw14) == 56);
static_assert(offsetof(Sqe, cdw15) == 60);

// Fabrics command layout (NVMe-oF 1.1 §3.3, Figure 9): same 64 bytes, FCTYPE at byte 4.
// Connect (Figure 20): RECFMT 40, QID 42, SQSIZE 44, CATTR 46, KATO 48.
// Property Set (Figure 33): ATTRIB 40, OFST 44, VALUE 48. Property Get (Figure 31): ATTRIB 40,
// OFST 44.
struct FabricsSqe {
  uint8_t opcode;  // 0x7F
  uint8_t flags;
  Le16 cid;
  uint8_t fctype;  // Fabrics Command Type
  uint8_t rsvd5[19];
  SglDescriptor dptr;
  uint8_t ts[24];  // Fabrics command type specific, bytes 40..63
};
static_assert(sizeof(FabricsSqe) == 64);
static_assert(offsetof(FabricsSqe, fctype) == 4);
static_assert(offsetof(FabricsSqe, dptr) == 24);
static_assert(offsetof(FabricsSqe, ts) == 40);

// --- Completion queue entry (Base 2.0 §4.6, Figure 90), 16 bytes --------------------------------
struct Cqe {
  Le32 dw0;      // Command specific (for Connect: CNTLID in bits 15:0)
  Le32 dw1;      // Command specific (Property Get of an 8-byte property: high half)
  Le16 sq_head;  // SQHD
  Le16 sq_id;    // SQID
  Le16 cid;      // Command Identifier
  Le16 status;   // Phase tag (bit 0) and Status Field (bits 15:1)
};
static_assert(sizeof(Cqe) == 16);
static_assert(offsetof(Cqe, dw0) == 0);
static_assert(offsetof(Cqe, dw1) == 4);
static_assert(offsetof(Cqe, sq_head) == 8);
static_assert(offsetof(Cqe, sq_id) == 10);
static_assert(offsetof(Cqe, cid) == 12);
static_assert(offsetof(Cqe, status) == 14);

// Fabrics Connect data (NVMe-oF 1.1 §3.3.1, Figure 21), 1024 bytes, sent in-capsule.
struct ConnectData {
  uint8_t hostid[16];  // HOSTID
  Le16 cntlid;         // CNTLID: 0xFFFF for the admin queue (dynamic model), else the admin's
  uint8_t rsvd18[238];
  char subnqn[256];   // SUBNQN, NUL terminated
  char hostnqn[256];  // HOSTNQN, NUL terminated
  uint8_t rsvd768[256];
};
static_assert(sizeof(ConnectData) == 1024);
static_assert(offsetof(ConnectData, cntlid) == 16);
static_assert(offsetof(ConnectData, subnqn) == 256);
static_assert(offsetof(ConnectData, hostnqn) == 512);

// Dataset Management range (NVM Command Set 1.0 §3.2.3, Figure 39), 16 bytes.
struct DsmRange {
  Le32 cattr;  // Context Attributes
  Le32 nlb;    // Length in logical blocks (not 0-based)
  Le64 slba;   // Starting LBA
};
static_assert(sizeof(DsmRange) == 16);
static_assert(offsetof(DsmRange, nlb) == 4);
static_assert(offsetof(DsmRange, slba) == 8);

// --- Opcodes
// --------------------------------------------------------------------------------------
enum class AdminOpcode : uint8_t {
  kGetLogPage = 0x02,
  kIdentify = 0x06,
  kAbort = 0x08,
  kSetFeatures = 0x09,
  kGetFeatures = 0x0A,
  kAsyncEventRequest = 0x0C,
  kKeepAlive = 0x18,
  kFabrics = 0x7F,
};

enum class IoOpcode : uint8_t {
  kFlush = 0x00,
  kWrite = 0x01,
  kRead = 0x02,
  kWriteZeroes = 0x08,
  kDatasetManagement = 0x09,
};

inline constexpr uint8_t kFabricsOpcode = 0x7F;

enum class FabricsType : uint8_t {
  kPropertySet = 0x00,
  kConnect = 0x01,
  kPropertyGet = 0x04,
  kAuthSend = 0x05,
  kAuthReceive = 0x06,
  kDisconnect = 0x08,
};

// Identify CNS values (Base 2.0 §5.17.1, Figure 273).
enum class IdentifyCns : uint8_t {
  kNamespace = 0x00,
  kController = 0x01,
  kActiveNamespaceList = 0x02,
  kNamespaceIdDescriptors = 0x03,
};

// Log page identifiers (Base 2.0 §5.16.1).
enum class LogPageId : uint8_t {
  kError = 0x01,
  kChangedNamespaceList = 0x04,
  kAna = 0x0C,
  kDiscovery = 0x70,
};

// Feature identifiers (Base 2.0 §5.27.1).
enum class FeatureId : uint8_t {
  kNumberOfQueues = 0x07,
  kAsyncEventConfig = 0x0B,
  kKeepAliveTimer = 0x0F,
};

// Asynchronous Event Configuration (feature 0Bh) bits we enable.
inline constexpr uint32_t kAecNamespaceAttribute = 1u << 8;
inline constexpr uint32_t kAecAnaChange = 1u << 11;
inline constexpr uint32_t kAecDiscoveryLogChange = 1u << 31;

// Read/Write CDW12 bits (NVM Command Set 1.0 Figure 17).
inline constexpr uint32_t kRwFua = 1u << 30;
inline constexpr uint32_t kRwLimitedRetry = 1u << 31;
// Write Zeroes CDW12 bit 25: deallocate (DEAC).
inline constexpr uint32_t kWriteZeroesDeac = 1u << 25;
// Dataset Management CDW11 bit 2: attribute deallocate (AD).
inline constexpr uint32_t kDsmDeallocate = 1u << 2;
inline constexpr uint32_t kDsmMaxRanges = 256;

// Connect CATTR bit 2: disable SQ flow control (NVMe-oF 1.1 Figure 20).
inline constexpr uint8_t kConnectAttrDisableSqFlowControl = 1u << 2;
inline constexpr uint16_t kAdminCntlidDynamic = 0xFFFF;

// --- Controller properties (Base 2.0 §3.1.3)
// -------------------------------------------------------
enum class Property : uint32_t {
  kCap = 0x00,   // 8 bytes
  kVs = 0x08,    // 4 bytes
  kCc = 0x14,    // 4 bytes
  kCsts = 0x1C,  // 4 bytes
  kNssr = 0x20,  // 4 bytes
};
inline constexpr bool PropertyIs64Bit(Property p) { return p == Property::kCap; }

// CAP fields.
inline constexpr uint32_t CapMqes(uint64_t cap) { return (cap & 0xFFFF) + 1; }  // entries, 1-based
inline constexpr uint32_t CapTimeoutMs(uint64_t cap) { return ((cap >> 24) & 0xFF) * 500; }
inline constexpr uint32_t CapDstrd(uint64_t cap) { return (cap >> 32) & 0xF; }
inline constexpr uint32_t CapMpsMin(uint64_t cap) { return (cap >> 48) & 0xF; }
// CC fields.
inline constexpr uint32_t kCcEnable = 1u << 0;
inline constexpr uint32_t kCcCssNvm = 0u << 4;
inline constexpr uint32_t kCcShnNormal = 1u << 14;
inline constexpr uint32_t kCcShnMask = 3u << 14;
inline constexpr uint32_t kCcIosqes = 6u << 16;  // 2^6 = 64-byte SQE
inline constexpr uint32_t kCcIocqes = 4u << 20;  // 2^4 = 16-byte CQE
// CSTS fields.
inline constexpr uint32_t kCstsReady = 1u << 0;
inline constexpr uint32_t kCstsFatal = 1u << 1;
inline constexpr uint32_t kCstsShstMask = 3u << 2;
inline constexpr uint32_t kCstsShstComplete = 2u << 2;

// --- Status (Base 2.0 §4.6.1.2)
// ----------------------------------------------------------------------- Status Field as carried
// in CQE bits 15:1 (i.e. Cqe::status >> 1).
inline constexpr uint16_t StatusSc(uint16_t sf) { return sf & 0xFF; }
inline constexpr uint16_t StatusSct(uint16_t sf) { return (sf >> 8) & 0x7; }
inline constexpr uint16_t StatusCrd(uint16_t sf) { return (sf >> 11) & 0x3; }
inline constexpr bool StatusMore(uint16_t sf) { return (sf >> 13) & 1; }
inline constexpr bool StatusDnr(uint16_t sf) { return (sf >> 14) & 1; }
inline constexpr uint16_t MakeStatus(uint8_t sct, uint8_t sc, bool dnr = false, uint8_t crd = 0) {
  return static_cast<uint16_t>(sc | (sct << 8) | (crd << 11) | (dnr ? 1u << 14 : 0));
}

enum StatusCodeType : uint8_t {
  kSctGeneric = 0x0,
  kSctCommandSpecific = 0x1,
  kSctMedia = 0x2,
  kSctPath = 0x3,
  kSctVendor = 0x7,
};

// Generic command status (SCT 0).
inline constexpr uint8_t kScSuccess = 0x00;
inline constexpr uint8_t kScInvalidOpcode = 0x01;
inline constexpr uint8_t kScInvalidField = 0x02;
inline constexpr uint8_t kScCidConflict = 0x03;
inline constexpr uint8_t kScDataTransferError = 0x04;
inline constexpr uint8_t kScPowerLossAbort = 0x05;
inline constexpr uint8_t kScInternalError = 0x06;
inline constexpr uint8_t kScAbortRequested = 0x07;
inline constexpr uint8_t kScAbortSqDeleted = 0x08;
inline constexpr uint8_t kScInvalidNamespace = 0x0B;
inline constexpr uint8_t kScCommandSequenceError = 0x0C;
inline constexpr uint8_t kScSglDataBlockInvalid = 0x0D;  // "Invalid SGL Segment Descriptor"
inline constexpr uint8_t kScNamespaceWriteProtected = 0x20;
inline constexpr uint8_t kScTransientTransportError = 0x22;
inline constexpr uint8_t kScLbaOutOfRange = 0x80;
inline constexpr uint8_t kScCapacityExceeded = 0x81;
inline constexpr uint8_t kScNamespaceNotReady = 0x82;
inline constexpr uint8_t kScReservationConflict = 0x83;
inline constexpr uint8_t kScFormatInProgress = 0x84;
// Command specific status (SCT 1).
inline constexpr uint8_t kScAbortLimitExceeded = 0x03;
inline constexpr uint8_t kScAerLimitExceeded = 0x05;
inline constexpr uint8_t kScInvalidLogPage = 0x09;
inline constexpr uint8_t kScConnectIncompatibleFormat = 0x80;
inline constexpr uint8_t kScConnectControllerBusy = 0x81;
inline constexpr uint8_t kScConnectInvalidParameters = 0x82;
inline constexpr uint8_t kScConnectRestartDiscovery = 0x83;
inline constexpr uint8_t kScConnectInvalidHost = 0x84;
inline constexpr uint8_t kScAuthRequired = 0x91;
// Media and data integrity errors (SCT 2).
inline constexpr uint8_t kScWriteFault = 0x80;
inline constexpr uint8_t kScUnrecoveredReadError = 0x81;
inline constexpr uint8_t kScAccessDenied = 0x86;
// Path related status (SCT 3).
inline constexpr uint8_t kScInternalPathError = 0x00;
inline constexpr uint8_t kScAnaPersistentLoss = 0x01;
inline constexpr uint8_t kScAnaInaccessible = 0x02;
inline constexpr uint8_t kScAnaTransition = 0x03;
inline constexpr uint8_t kScControllerPathingError = 0x60;
inline constexpr uint8_t kScHostPathingError = 0x70;
inline constexpr uint8_t kScAbortedByHost = 0x71;

// --- Asynchronous events (Base 2.0 §5.2, Figure 146)
// ----------------------------------------------------
inline constexpr uint8_t kAerTypeError = 0x0;
inline constexpr uint8_t kAerTypeSmart = 0x1;
inline constexpr uint8_t kAerTypeNotice = 0x2;
inline constexpr uint8_t kAerTypeIoCommandSpecific = 0x6;
inline constexpr uint8_t kAerTypeVendor = 0x7;
inline constexpr uint8_t kAerNoticeNamespaceAttribute = 0x00;
inline constexpr uint8_t kAerNoticeFirmwareActivation = 0x01;
inline constexpr uint8_t kAerNoticeAnaChange = 0x03;
inline constexpr uint8_t kAerNoticeDiscoveryLogChange = 0xF0;

// Well-known discovery subsystem NQN (NVMe-oF 1.1 §7.1).
inline constexpr char kDiscoveryNqn[] = "nqn.2014-08.org.nvmexpress.discovery";
inline constexpr size_t kNqnMaxLength = 223;  // NQN characters, excluding the terminating NUL

}  // namespace nvmf_ublk::nvme

#endif  // NVMF_UBLK_NVME_SPEC_H_
