// Parsers for the Identify data a host reads from a controller (Base 2.0 §5.17.2): Identify
// Controller (CNS 01h), Identify Namespace (CNS 00h), the Active Namespace ID list (CNS 02h), the
// Namespace Identification Descriptor list (CNS 03h), and the I/O Command Set specific Identify
// Controller data of the NVM command set (CNS 06h, CSI 00h; NVM Command Set 1.0 §4.1.5.2).
//
// The byte layouts are libnvme 1.3's structures (nvme/types.h), used only inside identify.cc; the
// results are plain host-order values. Every parser is pure: it reads at most `len` bytes of `data`
// and turns anything malformed that a remote target could send into a Status (kDataLoss, naming the
// field), never a crash. Strings are validated (no control characters) and trimmed.
#ifndef NVMF_UBLK_NVME_IDENTIFY_H_
#define NVMF_UBLK_NVME_IDENTIFY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace nvmf_ublk::nvme {

// Size of every Identify data structure.
inline constexpr size_t kIdentifyDataSize = 4096;

// CNS 06h (I/O Command Set specific Identify Controller); not in IdentifyCns (spec.h) yet.
inline constexpr uint8_t kIdentifyCnsControllerCsi = 0x06;

// Identify Controller fields a host uses (Base 2.0 Figure 275). Field names are the spec's.
// CTRATT bit 6: Traffic Based Keep Alive Support (the controller restarts its keep-alive timer on
// every command it processes, not only on Keep Alive).
inline constexpr uint32_t kCtrattTbkas = 1u << 6;

struct ControllerInfo {
  uint16_t vid = 0;       // VID: PCI Vendor ID
  uint16_t ssvid = 0;     // SSVID: PCI Subsystem Vendor ID
  std::string serial;     // SN, trimmed
  std::string model;      // MN, trimmed
  std::string firmware;   // FR, trimmed
  uint32_t ieee_oui = 0;  // IEEE: OUI, bytes 73..75 read little endian
  uint8_t cmic = 0;       // CMIC: bit 0 multi-port, 1 multi-controller, 3 ANA reporting
  uint8_t mdts = 0;       // MDTS: raw (2^MDTS units of CAP.MPSMIN; 0 = no limit)
  uint16_t cntlid = 0;    // CNTLID
  uint32_t version = 0;   // VER: major 31:16, minor 15:8, tertiary 7:0
  uint32_t oaes = 0;      // OAES: optional asynchronous events supported
  uint32_t ctratt = 0;    // CTRATT: controller attributes (kCtratt*)
  uint8_t cntrltype = 0;  // CNTRLTYPE: 0 not reported, 1 I/O, 2 discovery, 3 administrative
  std::array<uint16_t, 3> crdt{};  // CRDT1..CRDT3: command retry delay times, 100 ms units
  uint16_t oacs = 0;               // OACS: optional admin command support
  uint8_t aerl = 0;                // AERL: 0-based outstanding AER limit
  uint8_t lpa = 0;                 // LPA: log page attributes
  uint16_t kas = 0;                // KAS: keep alive support granularity, 100 ms units
  uint8_t anatt = 0;               // ANATT: ANA transition time, seconds
  uint8_t anacap = 0;              // ANACAP: ANA capabilities
  uint32_t anagrpmax = 0;          // ANAGRPMAX: largest ANA group ID
  uint32_t nanagrpid = 0;          // NANAGRPID: number of ANA group IDs
  uint16_t cqt = 0;                // CQT: command quiesce time, ms (0 = not reported)
  uint8_t sqes = 0;                // SQES: required (3:0) / maximum (7:4) SQE size, log2 bytes
  uint8_t cqes = 0;                // CQES: required (3:0) / maximum (7:4) CQE size, log2 bytes
  uint16_t maxcmd = 0;             // MAXCMD: outstanding commands limit (fabrics)
  uint32_t nn = 0;                 // NN: largest namespace ID
  uint16_t oncs = 0;               // ONCS: optional NVM command support
  uint16_t fuses = 0;              // FUSES: fused operation support
  uint8_t vwc = 0;                 // VWC: bit 0 volatile write cache present
  uint32_t sgls = 0;               // SGLS: SGL support
  std::string subnqn;              // SUBNQN: NVM subsystem NQN
  // Fabrics (NVMe-oF 1.1 §4.1, Figure 28).
  uint32_t ioccsz = 0;  // IOCCSZ: I/O queue command capsule size, 16-byte units
  uint32_t iorcsz = 0;  // IORCSZ: I/O queue response capsule size, 16-byte units
  uint16_t icdoff = 0;  // ICDOFF: in-capsule data offset, 16-byte units
  uint8_t fcatt = 0;    // FCATT: bit 0 static controller model
  uint8_t msdbd = 0;    // MSDBD: maximum SGL data block descriptors
  uint16_t ofcs = 0;    // OFCS: optional fabric commands supported
  // Dataset Management / Write Zeroes limits. These live in the NVM command set specific Identify
  // Controller data (CNS 06h, CSI 00h; struct nvme_id_ctrl_nvm), not in CNS 01h: they stay 0 ("not
  // reported") until ParseIdentifyControllerNvm() fills them in.
  uint8_t vsl = 0;     // VSL: Verify size limit, 2^n units of CAP.MPSMIN (0 = none)
  uint8_t wzsl = 0;    // WZSL: Write Zeroes size limit, 2^n units of CAP.MPSMIN (0 = none)
  uint8_t dmrl = 0;    // DMRL: Dataset Management ranges limit (0 = none reported)
  uint32_t dmrsl = 0;  // DMRSL: Dataset Management range size limit, logical blocks
  uint64_t dmsl = 0;   // DMSL: Dataset Management size limit, logical blocks

  // ONCS bits (Base 2.0 Figure 275, bytes 521:520).
  bool SupportsCompare() const { return oncs & (1u << 0); }
  bool SupportsWriteUncorrectable() const { return oncs & (1u << 1); }
  bool SupportsDsm() const { return oncs & (1u << 2); }
  bool SupportsWriteZeroes() const { return oncs & (1u << 3); }
  bool SupportsReservations() const { return oncs & (1u << 5); }
  bool SupportsVerify() const { return oncs & (1u << 7); }
  bool SupportsCopy() const { return oncs & (1u << 8); }
  bool HasVolatileWriteCache() const { return vwc & 1u; }
  // CMIC bit 3: the controller reports ANA states (the ANA log page exists).
  bool SupportsAnaReporting() const { return cmic & (1u << 3); }
  // Bytes of in-capsule data an I/O command may carry: IOCCSZ x 16 minus the 64-byte SQE (0 when
  // IOCCSZ < 4, which a valid fabrics controller never reports).
  uint32_t InCapsuleDataBytes() const;
  // CNTRLTYPE 2, or (controllers older than Base 1.4 report CNTRLTYPE 0) the well-known discovery
  // NQN as SUBNQN.
  bool IsDiscoveryController() const;
};

// MDTS in bytes: 2^MDTS x `mpsmin_bytes` (the minimum memory page size, 2^(12 + CAP.MPSMIN)).
// 0 when MDTS is 0, which means no limit. Saturates at UINT64_MAX for absurd MDTS values.
uint64_t MaxTransferBytes(const ControllerInfo& info, uint32_t mpsmin_bytes);

// Identify Controller (CNS 01h). `len` must be at least 4096.
absl::StatusOr<ControllerInfo> ParseIdentifyController(const uint8_t* data, size_t len);

// Identify Controller, NVM command set specific (CNS 06h, CSI 00h): fills VSL, WZSL, DMRL, DMRSL
// and DMSL of `info`. `len` must be at least 4096.
absl::Status ParseIdentifyControllerNvm(const uint8_t* data, size_t len, ControllerInfo* info);

// Identify Namespace fields a host uses (NVM Command Set 1.0 Figure 97).
struct NamespaceInfo {
  uint64_t nsze = 0;    // NSZE: namespace size, logical blocks
  uint64_t ncap = 0;    // NCAP: namespace capacity, logical blocks
  uint64_t nuse = 0;    // NUSE: namespace utilization, logical blocks
  uint8_t nsfeat = 0;   // NSFEAT: bit 0 thin, bit 4 OPTPERF (NPWG..NOWS valid)
  uint8_t nlbaf = 0;    // NLBAF: 0-based number of LBA formats
  uint8_t flbas = 0;    // FLBAS: raw
  uint8_t nmic = 0;     // NMIC: bit 0 shared namespace
  uint8_t dlfeat = 0;   // DLFEAT: deallocate logical block features
  uint16_t noiob = 0;   // NOIOB: optimal I/O boundary, logical blocks (0 = not reported)
  uint64_t nvmcap = 0;  // NVMCAP: NVM capacity in bytes (128-bit field, saturated to 64 bits)
  // NPWG/NPWA/NPDG/NPDA/NOWS, 0-based logical block counts; meaningful only when OPTPERF is set.
  uint16_t npwg = 0;                // Namespace Preferred Write Granularity
  uint16_t npwa = 0;                // Namespace Preferred Write Alignment
  uint16_t npdg = 0;                // Namespace Preferred Deallocate Granularity
  uint16_t npda = 0;                // Namespace Preferred Deallocate Alignment
  uint16_t nows = 0;                // Namespace Optimal Write Size
  uint32_t anagrpid = 0;            // ANAGRPID: ANA group of this namespace
  std::array<uint8_t, 16> nguid{};  // NGUID (all zero = not reported)
  std::array<uint8_t, 8> eui64{};   // EUI64 (all zero = not reported)
  // The LBA format FLBAS selects (NVM Command Set 1.0 Figure 98, LBAF0 at byte 128).
  uint8_t format_index = 0;        // FLBAS bits 3:0, plus bits 6:5 as 5:4 when NLBAF >= 16
  uint32_t lba_bytes = 0;          // 2^LBADS; 0 for an inactive namespace with no format
  uint16_t metadata_bytes = 0;     // MS: metadata bytes per logical block
  bool metadata_extended = false;  // FLBAS bit 4: metadata at the end of each block (DIF)

  // An inactive NSID returns all zeroes (Base 2.0 §3.2.1.4): NSZE 0.
  bool inactive() const { return nsze == 0; }
  bool optperf() const { return nsfeat & (1u << 4); }
  // The physical (preferred write) block: (NPWG + 1) x LBA size when OPTPERF is set, else the LBA
  // size.
  uint64_t PhysicalBlockBytes() const;
};

// Identify Namespace (CNS 00h). `len` must be at least 4096. Rejects an FLBAS index above NLBAF,
// more than 64 formats, LBADS outside 9..16, and NSZE whose byte size overflows 64 bits. An
// inactive namespace (NSZE 0) is accepted without checking its format.
absl::StatusOr<NamespaceInfo> ParseIdentifyNamespace(const uint8_t* data, size_t len);

// Whether a host can serve a parsed namespace: kDataLoss for NSZE 0 with a nonzero NCAP or NUSE
// (an active namespace needs NSZE >= NCAP >= NUSE), kFailedPrecondition for a logical block larger
// than the controller's maximum transfer (`max_transfer_bytes` from MaxTransferBytes; 0 = no
// limit), which no command could move. OK for an inactive namespace (all zeroes).
absl::Status CheckNamespaceServable(const NamespaceInfo& ns, uint64_t max_transfer_bytes);

// Namespace identifiers (Base 2.0 §5.17.2.3, Figure 279).
struct NamespaceIds {
  std::optional<std::array<uint8_t, 8>> eui64;
  std::optional<std::array<uint8_t, 16>> nguid;
  std::optional<std::array<uint8_t, 16>> uuid;
  std::optional<uint8_t> csi;  // Command Set Identifier (0 = NVM)

  // A name that identifies the namespace across paths and reboots, from the first non-zero of
  // NGUID ("nguid.<32 hex>"), EUI-64 ("eui.<16 hex>"), UUID ("uuid.<8-4-4-4-12 hex>"); lower case
  // hex. Empty if there is none.
  std::string StableId() const;
  // Each identifier alone, lower-case hex (UUID as 8-4-4-4-12); empty when absent or all zero.
  std::string NguidHex() const;
  std::string Eui64Hex() const;
  std::string UuidString() const;
};

// Namespace Identification Descriptor list (CNS 03h): NIDT, NIDL, 2 reserved bytes, NIDL bytes of
// NID; ends at a descriptor with NIDT 0 or at the end of the buffer. Rejects a NIDL that does not
// match its type (EUI-64 8, NGUID 16, UUID 16, CSI 1), a descriptor that runs past `len`, and a
// type given twice. Descriptors of unknown types are skipped.
absl::StatusOr<NamespaceIds> ParseNamespaceIdDescriptors(const uint8_t* data, size_t len);

// NGUID and EUI-64 from Identify Namespace, for controllers without the descriptor list (the
// all-zero "not reported" values stay absent).
NamespaceIds NamespaceIdsFromIdentify(const NamespaceInfo& ns);

// Active Namespace ID list (CNS 02h): NSIDs in increasing order, ended by 0 or the end of the
// buffer. Rejects a list that is not strictly increasing, NSID FFFFFFFFh, and a length that is not
// a multiple of 4.
absl::StatusOr<std::vector<uint32_t>> ParseActiveNamespaceList(const uint8_t* data, size_t len);

// A fixed-size text field of a remote data structure as a string: cut at the first NUL, spaces
// trimmed at both ends. Control characters (below 20h, 7Fh) are rejected with kDataLoss naming
// `what`; so are bytes >= 80h unless `allow_utf8` (NQNs are UTF-8, Base 2.0 §4.5).
absl::StatusOr<std::string> ParseTextField(const char* field, size_t size, std::string_view what,
                                           bool allow_utf8 = false);

}  // namespace nvmf_ublk::nvme

#endif  // NVMF_UBLK_NVME_IDENTIFY_H_
