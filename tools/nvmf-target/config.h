// Configuration of the test target (tools/nvmf-target): ports, subsystems, namespaces, transport
// parameters and fault injection. Plain data; Target validates it in Start().
//
// The target is a test peer for the nvmf-ublk initiator (DESIGN.md §2, §7), not a product: it aims
// to be correct where the initiator depends on it and to make every failure mode reproducible.
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_CONFIG_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_CONFIG_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nvme/spec.h"

namespace nvmf_ublk::target {

// ANA states (Base 2.0, Asymmetric Namespace Access); values are the ANA log's.
enum class AnaState : uint8_t {
  kOptimized = 0x01,
  kNonOptimized = 0x02,
  kInaccessible = 0x03,
  kPersistentLoss = 0x04,
  kChange = 0x0F,
};
const char* ToString(AnaState state);
// "optimized", "non-optimized", "inaccessible", "persistent-loss", "change" (also "opt", "nonopt").
std::optional<AnaState> ParseAnaState(const std::string& text);

enum class BackendKind { kRam, kFile, kNull };

struct NamespaceConfig {
  uint32_t nsid = 0;  // 0: the next free NSID of the subsystem
  BackendKind kind = BackendKind::kRam;
  // Bytes (rounded down to the block size). For a file: 0 uses the file's size; a larger value
  // extends the file (created if missing).
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;  // 512, 1024, 2048 or 4096
  std::string path;           // file backend
  uint32_t ana_group = 1;     // ANAGRPID, >= 1
  // Identifiers; by default NGUID and UUID are derived from (subsystem NQN, NSID), so they are
  // stable across runs, and EUI-64 is not reported.
  std::optional<std::array<uint8_t, 16>> nguid;
  std::optional<std::array<uint8_t, 16>> uuid;
  std::optional<std::array<uint8_t, 8>> eui64;
};

// In-band authentication a subsystem requires of one host (like nvmet's hosts/<nqn>/dhchap_*):
// its Connect responses ask for DH-HMAC-CHAP, and the host's queues are usable only once it
// proved `key`. With `ctrl_key` the controller answers a host's challenge (bidirectional).
struct HostAuthConfig {
  std::string hostnqn;
  std::string key;                // DHHC-1:hh:base64:
  std::string ctrl_key;           // empty: none
  std::vector<uint8_t> hashes;    // HashIDs the controller accepts, preferred first; empty: all
  std::vector<uint8_t> dhgroups;  // DH group IDs, preferred first; empty: all
};

struct SubsystemConfig {
  std::string nqn;
  std::string serial;  // empty: derived from the NQN
  std::string model = "nvmf-ublk test target";
  std::vector<NamespaceConfig> namespaces;
  std::vector<std::string> allowed_hosts;  // empty: any host
  std::vector<HostAuthConfig> host_auth;   // hosts that must authenticate
  std::vector<size_t> ports;               // indices into TargetConfig::ports; empty: all ports
};

// Transport parameters of new connections (NVMe/TCP 1.0: ICResp, R2T, C2HData PDUs).
struct TransportConfig {
  uint8_t cpda = 0;                  // CPDA advertised in ICResp (0..31): H2C data alignment
  uint32_t maxh2cdata = 128 * 1024;  // MAXH2CDATA (>= 4096, multiple of 4)
  // Bytes asked for per R2T (0: the whole remaining transfer in one R2T). With a 32 KiB chunk a
  // 128 KiB write gets 4 R2Ts, of which min(max_r2t, host MAXR2T + 1) are outstanding at once.
  uint32_t r2t_chunk = 0;
  uint32_t max_r2t = 16;            // outstanding R2Ts per command, target side limit (>= 1)
  uint32_t c2h_chunk = 128 * 1024;  // largest C2HData payload per PDU (>= 4)
  // Complete reads with the C2HData SUCCESS flag instead of a CapsuleResp, on queues that
  // disabled SQ flow control at Connect (the only case the spec allows).
  bool c2h_success = false;
  bool allow_header_digest = true;  // grant HDGST when requested
  bool allow_data_digest = true;    // grant DDGST when requested
};

// Deliberate protocol violations of a hostile or broken controller, for tests of the host (each
// must be detected, answered with an H2CTermReq where the spec says so, and recovered from).
// A kind fires on a command it fits (see MaliceTarget); the ICResp kinds on the next ICReq; the
// admin-answer kinds on the next Identify or Get Log Page they fit (whether or not `admin` is set).
// The CID kinds assume the command ID layout of nvmf-ublk's host (slot index in the low
// bits(SQ entries - 1) bits, a generation above), so "unknown" and "next generation" are exact.
enum class Malice : uint8_t {
  kNone,
  // Any command: its CapsuleResp is malformed or wrong.
  kRespPlenBelowHlen,  // PLEN 8 < HLEN 24
  kRespPlenWrong,      // PLEN 28 (a CapsuleResp is exactly 24 without digests)
  kRespHlenWrong,      // HLEN 16
  kCidUnknown,         // the response names a CID that is not outstanding
  kCidNextGeneration,  // ... the next generation of the command's slot
  kDuplicateResp,      // the response twice
  kUnknownPduType,     // a PDU of type 0x0C instead of the response
  kStallMidPdu,        // half of the response, then silence (the socket stays open)
  kHeaderDigestBad,    // the response's header digest corrupted (with HDGST only)
  kTermReqMidData,     // a read: half its data, then a C2HTermReq
  // Reads: their C2HData is malformed or wrong.
  kC2HPlenHuge,         // PLEN 0xFFFFFFFF
  kC2HPdoInHeader,      // PDO 8, inside the header
  kC2HPdoPastPlen,      // PDO beyond PLEN
  kC2HBeyondLength,     // DATAL 512 bytes past the command's length
  kC2HGap,              // data starts at offset 512
  kC2HOverlap,          // [0, L/2) then [L/4, L)
  kC2HOutOfOrder,       // [L/2, L) then [0, L/2)
  kC2HAfterResp,        // the data once more after the response
  kC2HSuccessWithSqfc,  // the SUCCESS flag on a queue with SQ flow control
  kR2TOnRead,           // an R2T for a read
  kReadDoneEarly,       // success after half the data
  // Writes.
  kC2HOnWrite,          // C2HData for a write (any write)
  kR2TPlenWrong,        // R2T writes (below): PLEN 28
  kR2TBeyondLength,     // R2TL 4096 past the command's length
  kR2TOverlap,          // [0, L/2) then [L/4, 3L/4)
  kR2TReusedTtag,       // [0, L/2) and [L/2, L) with one TTAG
  kR2TTooMany,          // host MAXR2T + 1 R2Ts at once
  kWriteDoneBeforeR2T,  // success without asking for the data
  kWriteDoneAfterHalf,  // success after receiving half the data
  // The next ICResp.
  kIcRespPfv,              // PFV 1
  kIcRespCpda,             // CPDA 32
  kIcRespMaxH2CSmall,      // MAXH2CDATA 1024
  kIcRespMaxH2CUnaligned,  // MAXH2CDATA 4098
  // Admin answers with values out of range (the next answer of that kind; malice_after ignored).
  kIdentifyNn0,         // Identify Controller: NN 0 while namespaces are active
  kIdentifyLbads40,     // Identify Namespace: the current LBA format is 2^40 bytes
  kIdentifyNsze0,       // Identify Namespace: NSZE 0 with NCAP and NUSE unchanged
  kDiscoveryNumrecBig,  // discovery log: NUMREC 4 above the records the page holds
  kAnaNgrpsBig,         // ANA log: NGRPS 4 above the group descriptors the log holds
};
const char* ToString(Malice m);  // "resp-plen-below-hlen", ...
std::optional<Malice> ParseMalice(const std::string& text);
std::vector<Malice> AllMalice();  // every kind but kNone
enum class MaliceTarget { kAny, kRead, kWrite, kR2TWrite, kIcResp, kAdminAnswer };
MaliceTarget TargetOf(Malice m);

// Fault injection (per port or target-wide). Faults apply to commands on I/O queues, and to admin
// commands other than fabrics commands too when `admin` is set. Counting faults ("after", "every")
// count per connection; budgets ("next N") are shared by the connections of the scope and run down.
struct FaultConfig {
  uint64_t cut_after = 0;            // close a connection when its (cut_after+1)-th command arrives
  uint32_t delay_ms = 0;             // hold every response (and read data) this long
  uint32_t keep_alive_delay_ms = 0;  // hold Keep Alive answers this long (admin=1 not needed)
  uint64_t drop_every = 0;           // never answer every N-th command (it stays abortable)
  uint64_t corrupt_digest = 0;  // next N reads: wrong C2HData data digest (when DDGST negotiated)
  uint64_t term_req = 0;        // next N commands: answered by a C2HTermReq, connection closed
  uint64_t error_count = 0;     // next N commands: completed with error_status, not executed
  // Status Field (CQE bits 15:1) used by error_count; default ANA Inaccessible (SCT 3 SC 2).
  uint16_t error_status = nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaInaccessible);
  bool admin = false;
  Malice malice = Malice::kNone;
  uint64_t malice_after = 0;  // fires on a fitting command after this many of a connection
  uint64_t malice_times = 1;  // budget shared by the scope; 0: every fitting command
  // Transport overrides for connections established while the fault is set.
  std::optional<uint8_t> cpda;
  std::optional<uint32_t> maxh2cdata;
  std::optional<uint32_t> r2t_chunk;
  std::optional<uint32_t> max_r2t;

  bool empty() const;
};

struct PortConfig {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal; 0.0.0.0 / :: listen on all
  uint16_t port = 0;                  // 0: ephemeral (Target::Start reports the bound port)
  uint16_t port_id = 0;               // PORTID in the discovery log; 0: index + 1
  // Initial ANA state per group on this port (groups not listed are optimized).
  std::map<uint32_t, AnaState> ana_states;
  std::optional<TransportConfig> transport;  // overrides TargetConfig::transport
};

// A discovery log entry for another discovery controller (SUBTYPE 1).
struct ReferralConfig {
  std::string address;
  uint16_t port = 8009;
  uint16_t port_id = 0;
  bool operator==(const ReferralConfig& o) const {
    return address == o.address && port == o.port && port_id == o.port_id;
  }
};

struct TargetConfig {
  std::vector<PortConfig> ports;
  std::vector<SubsystemConfig> subsystems;
  std::vector<ReferralConfig> referrals;
  TransportConfig transport;
  FaultConfig fault;  // target-wide faults at start

  uint16_t queue_size = 128;  // CAP.MQES + 1: largest SQ (admin and I/O)
  // Tests of hostile targets: Property Get CAP answers this instead (e.g. MQES 0, which the spec
  // forbids); the target itself still enforces queue_size.
  std::optional<uint64_t> cap_override;
  // Tests of hostile targets: CC.EN is never answered by CSTS.RDY (a controller that never comes
  // up; the host gives up after CAP.TO).
  bool never_ready = false;
  uint16_t max_io_queues = 64;       // Number of Queues granted at most
  uint32_t in_capsule_data = 8192;   // I/O in-capsule data bytes: IOCCSZ = (64 + this) / 16
  uint8_t mdts = 8;                  // MDTS (2^n x 4 KiB; 8 = 1 MiB); 0 = no limit
  bool volatile_write_cache = true;  // VWC present (hosts then send Flush)
  uint32_t ana_group_max = 32;       // ANAGRPMAX / NANAGRPID (raised to the largest group used)
  uint8_t anatt = 10;                // ANATT, seconds (how long "change" may last)
  uint16_t cqt = 0;                  // CQT, ms (TP 4129 command quiesce time)
  // CTRATT.TBKAS: any command on any queue of a controller restarts its keep-alive timer (as
  // nvmet); without it only admin commands do.
  bool tbkas = false;
  uint8_t dsm_range_limit = 0;        // DMRL reported in CNS 06h (0: not reported)
  uint32_t dsm_range_size_limit = 0;  // DMRSL, logical blocks (0: not reported)
  std::string firmware = "0.1";
};

// kInvalidArgument naming the field for values a connection cannot use (CPDA > 31, MAXH2CDATA
// below 4096 or not a multiple of 4, zero R2T or C2H sizes, an error fault without a status).
absl::Status Validate(const TransportConfig& transport);
absl::Status Validate(const FaultConfig& fault);

}  // namespace nvmf_ublk::target

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_CONFIG_H_
