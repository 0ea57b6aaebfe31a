#include "nvme/identify.h"

#include <nvme/types.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "base/endian.h"
#include "base/status.h"
#include "nvme/spec.h"

namespace nvmf_ublk::nvme {

// libnvme's layouts against the spec's byte offsets (Base 2.0 Figure 275; NVMe-oF 1.1 Figure 28;
// NVM Command Set 1.0 Figures 97, 98 and Figure 109 for CNS 06h).
static_assert(sizeof(nvme_id_ctrl) == kIdentifyDataSize);
static_assert(offsetof(nvme_id_ctrl, vid) == 0);
static_assert(offsetof(nvme_id_ctrl, ssvid) == 2);
static_assert(offsetof(nvme_id_ctrl, sn) == 4);
static_assert(offsetof(nvme_id_ctrl, mn) == 24);
static_assert(offsetof(nvme_id_ctrl, fr) == 64);
static_assert(offsetof(nvme_id_ctrl, ieee) == 73);
static_assert(offsetof(nvme_id_ctrl, cmic) == 76);
static_assert(offsetof(nvme_id_ctrl, mdts) == 77);
static_assert(offsetof(nvme_id_ctrl, cntlid) == 78);
static_assert(offsetof(nvme_id_ctrl, ver) == 80);
static_assert(offsetof(nvme_id_ctrl, oaes) == 92);
static_assert(offsetof(nvme_id_ctrl, ctratt) == 96);
static_assert(offsetof(nvme_id_ctrl, cntrltype) == 111);
static_assert(offsetof(nvme_id_ctrl, crdt1) == 128);
static_assert(offsetof(nvme_id_ctrl, crdt3) == 132);
static_assert(offsetof(nvme_id_ctrl, oacs) == 256);
static_assert(offsetof(nvme_id_ctrl, aerl) == 259);
static_assert(offsetof(nvme_id_ctrl, lpa) == 261);
static_assert(offsetof(nvme_id_ctrl, kas) == 320);
static_assert(offsetof(nvme_id_ctrl, anatt) == 342);
static_assert(offsetof(nvme_id_ctrl, anacap) == 343);
static_assert(offsetof(nvme_id_ctrl, anagrpmax) == 344);
static_assert(offsetof(nvme_id_ctrl, nanagrpid) == 348);
constexpr size_t kCqtOffset = 386;
static_assert(kCqtOffset + 2 <= offsetof(nvme_id_ctrl, sqes));
static_assert(offsetof(nvme_id_ctrl, sqes) == 512);
static_assert(offsetof(nvme_id_ctrl, cqes) == 513);
static_assert(offsetof(nvme_id_ctrl, maxcmd) == 514);
static_assert(offsetof(nvme_id_ctrl, nn) == 516);
static_assert(offsetof(nvme_id_ctrl, oncs) == 520);
static_assert(offsetof(nvme_id_ctrl, fuses) == 522);
static_assert(offsetof(nvme_id_ctrl, vwc) == 525);
static_assert(offsetof(nvme_id_ctrl, sgls) == 536);
static_assert(offsetof(nvme_id_ctrl, subnqn) == 768);
static_assert(sizeof(nvme_id_ctrl::subnqn) == 256);
static_assert(offsetof(nvme_id_ctrl, ioccsz) == 1792);
static_assert(offsetof(nvme_id_ctrl, iorcsz) == 1796);
static_assert(offsetof(nvme_id_ctrl, icdoff) == 1800);
static_assert(offsetof(nvme_id_ctrl, fcatt) == 1802);
static_assert(offsetof(nvme_id_ctrl, msdbd) == 1803);
static_assert(offsetof(nvme_id_ctrl, ofcs) == 1804);

static_assert(sizeof(nvme_id_ctrl_nvm) == kIdentifyDataSize);
static_assert(offsetof(nvme_id_ctrl_nvm, vsl) == 0);
static_assert(offsetof(nvme_id_ctrl_nvm, wzsl) == 1);
static_assert(offsetof(nvme_id_ctrl_nvm, dmrl) == 3);
static_assert(offsetof(nvme_id_ctrl_nvm, dmrsl) == 4);
static_assert(offsetof(nvme_id_ctrl_nvm, dmsl) == 8);

static_assert(sizeof(nvme_id_ns) == kIdentifyDataSize);
static_assert(offsetof(nvme_id_ns, nsze) == 0);
static_assert(offsetof(nvme_id_ns, ncap) == 8);
static_assert(offsetof(nvme_id_ns, nuse) == 16);
static_assert(offsetof(nvme_id_ns, nsfeat) == 24);
static_assert(offsetof(nvme_id_ns, nlbaf) == 25);
static_assert(offsetof(nvme_id_ns, flbas) == 26);
static_assert(offsetof(nvme_id_ns, nmic) == 30);
static_assert(offsetof(nvme_id_ns, dlfeat) == 33);
static_assert(offsetof(nvme_id_ns, noiob) == 46);
static_assert(offsetof(nvme_id_ns, nvmcap) == 48);
static_assert(offsetof(nvme_id_ns, npwg) == 64);
static_assert(offsetof(nvme_id_ns, nows) == 72);
static_assert(offsetof(nvme_id_ns, anagrpid) == 92);
static_assert(offsetof(nvme_id_ns, nguid) == 104);
static_assert(offsetof(nvme_id_ns, eui64) == 120);
static_assert(offsetof(nvme_id_ns, lbaf) == 128);
static_assert(sizeof(nvme_lbaf) == 4);
static_assert(offsetof(nvme_lbaf, ms) == 0);
static_assert(offsetof(nvme_lbaf, ds) == 2);

static_assert(sizeof(nvme_ns_id_desc) == 4);
static_assert(offsetof(nvme_ns_id_desc, nidl) == 1);

namespace {

// Addresses of fields inside a remote buffer already known to hold a whole `T`.
#define NVMF_FIELD_PTR(data, type, field) ((data) + offsetof(type, field))

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string Hex(const uint8_t* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 0xF]);
  }
  return out;
}

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& a) {
  return std::all_of(a.begin(), a.end(), [](uint8_t b) { return b == 0; });
}

template <size_t N>
std::array<uint8_t, N> CopyArray(const uint8_t* p) {
  std::array<uint8_t, N> a;
  std::copy(p, p + N, a.begin());
  return a;
}

absl::Status CheckLength(size_t len, size_t need, const char* what) {
  if (len < need) {
    return absl::DataLossError(absl::StrCat(what, " data is ", len, " bytes, need ", need));
  }
  return absl::OkStatus();
}

const char* NidtName(uint8_t nidt) {
  switch (nidt) {
    case NVME_NIDT_EUI64:
      return "EUI64";
    case NVME_NIDT_NGUID:
      return "NGUID";
    case NVME_NIDT_UUID:
      return "UUID";
    case NVME_NIDT_CSI:
      return "CSI";
  }
  return "unknown";
}

}  // namespace

absl::StatusOr<std::string> ParseTextField(const char* field, size_t size, std::string_view what,
                                           bool allow_utf8) {
  size_t end = 0;
  while (end < size && field[end] != '\0') ++end;
  for (size_t i = 0; i < end; ++i) {
    auto c = static_cast<unsigned char>(field[i]);
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && !allow_utf8)) {
      return absl::DataLossError(
          absl::StrFormat("%s contains byte 0x%02x at offset %d", AbslView(what), c, i));
    }
  }
  size_t begin = 0;
  while (begin < end && field[begin] == ' ') ++begin;
  while (end > begin && field[end - 1] == ' ') --end;
  return std::string(field + begin, end - begin);
}

uint32_t ControllerInfo::InCapsuleDataBytes() const {
  if (ioccsz < 4) return 0;
  uint64_t bytes = uint64_t{ioccsz} * 16 - sizeof(Sqe);
  return static_cast<uint32_t>(std::min<uint64_t>(bytes, std::numeric_limits<uint32_t>::max()));
}

bool ControllerInfo::IsDiscoveryController() const {
  if (cntrltype == NVME_CTRL_CNTRLTYPE_DISCOVERY) return true;
  return cntrltype == 0 && subnqn == kDiscoveryNqn;
}

uint64_t MaxTransferBytes(const ControllerInfo& info, uint32_t mpsmin_bytes) {
  if (info.mdts == 0 || mpsmin_bytes == 0) return 0;
  const uint64_t mps = mpsmin_bytes;
  // mps << mdts keeps every bit while the shift is at most the number of leading zero bits.
  if (info.mdts > __builtin_clzll(mps)) return std::numeric_limits<uint64_t>::max();
  return mps << info.mdts;
}

absl::Status CheckNamespaceServable(const NamespaceInfo& ns, uint64_t max_transfer_bytes) {
  if (ns.inactive()) {
    if (ns.ncap != 0 || ns.nuse != 0) {
      return absl::DataLossError(absl::StrCat("Identify Namespace: NSZE 0 (no blocks) with NCAP ",
                                              ns.ncap, " and NUSE ", ns.nuse,
                                              " (an active namespace needs NSZE >= NCAP >= NUSE)"));
    }
    return absl::OkStatus();
  }
  if (max_transfer_bytes != 0 && ns.lba_bytes > max_transfer_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "its ", ns.lba_bytes, "-byte logical block is larger than the controller's ",
        max_transfer_bytes, "-byte maximum transfer (MDTS): no command could move one block"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ControllerInfo> ParseIdentifyController(const uint8_t* data, size_t len) {
  if (data == nullptr) len = 0;
  RETURN_IF_ERROR(CheckLength(len, sizeof(nvme_id_ctrl), "Identify Controller"));
  using T = nvme_id_ctrl;
  ControllerInfo info;
  info.vid = LoadLe16(NVMF_FIELD_PTR(data, T, vid));
  info.ssvid = LoadLe16(NVMF_FIELD_PTR(data, T, ssvid));
  auto text = [&](size_t off, size_t size, const char* what, bool utf8,
                  std::string* out) -> absl::Status {
    ASSIGN_OR_RETURN(*out, ParseTextField(reinterpret_cast<const char*>(data + off), size,
                                          absl::StrCat("Identify Controller ", what), utf8));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(text(offsetof(T, sn), sizeof(T::sn), "SN", false, &info.serial));
  RETURN_IF_ERROR(text(offsetof(T, mn), sizeof(T::mn), "MN", false, &info.model));
  RETURN_IF_ERROR(text(offsetof(T, fr), sizeof(T::fr), "FR", false, &info.firmware));
  RETURN_IF_ERROR(text(offsetof(T, subnqn), sizeof(T::subnqn), "SUBNQN", true, &info.subnqn));
  const uint8_t* ieee = NVMF_FIELD_PTR(data, T, ieee);
  info.ieee_oui = ieee[0] | (uint32_t{ieee[1]} << 8) | (uint32_t{ieee[2]} << 16);
  info.cmic = data[offsetof(T, cmic)];
  info.mdts = data[offsetof(T, mdts)];
  info.cntlid = LoadLe16(NVMF_FIELD_PTR(data, T, cntlid));
  info.version = LoadLe32(NVMF_FIELD_PTR(data, T, ver));
  info.oaes = LoadLe32(NVMF_FIELD_PTR(data, T, oaes));
  info.ctratt = LoadLe32(NVMF_FIELD_PTR(data, T, ctratt));
  info.cntrltype = data[offsetof(T, cntrltype)];
  info.crdt[0] = LoadLe16(NVMF_FIELD_PTR(data, T, crdt1));
  info.crdt[1] = LoadLe16(NVMF_FIELD_PTR(data, T, crdt2));
  info.crdt[2] = LoadLe16(NVMF_FIELD_PTR(data, T, crdt3));
  info.oacs = LoadLe16(NVMF_FIELD_PTR(data, T, oacs));
  info.aerl = data[offsetof(T, aerl)];
  info.lpa = data[offsetof(T, lpa)];
  info.kas = LoadLe16(NVMF_FIELD_PTR(data, T, kas));
  info.anatt = data[offsetof(T, anatt)];
  info.anacap = data[offsetof(T, anacap)];
  info.anagrpmax = LoadLe32(NVMF_FIELD_PTR(data, T, anagrpmax));
  info.nanagrpid = LoadLe32(NVMF_FIELD_PTR(data, T, nanagrpid));
  // CQT (bytes 387:386, NVMe 2.1; reserved in libnvme 1.3's layout, so read by offset).
  info.cqt = LoadLe16(data + kCqtOffset);
  info.sqes = data[offsetof(T, sqes)];
  info.cqes = data[offsetof(T, cqes)];
  info.maxcmd = LoadLe16(NVMF_FIELD_PTR(data, T, maxcmd));
  info.nn = LoadLe32(NVMF_FIELD_PTR(data, T, nn));
  info.oncs = LoadLe16(NVMF_FIELD_PTR(data, T, oncs));
  info.fuses = LoadLe16(NVMF_FIELD_PTR(data, T, fuses));
  info.vwc = data[offsetof(T, vwc)];
  info.sgls = LoadLe32(NVMF_FIELD_PTR(data, T, sgls));
  info.ioccsz = LoadLe32(NVMF_FIELD_PTR(data, T, ioccsz));
  info.iorcsz = LoadLe32(NVMF_FIELD_PTR(data, T, iorcsz));
  info.icdoff = LoadLe16(NVMF_FIELD_PTR(data, T, icdoff));
  info.fcatt = data[offsetof(T, fcatt)];
  info.msdbd = data[offsetof(T, msdbd)];
  info.ofcs = LoadLe16(NVMF_FIELD_PTR(data, T, ofcs));
  return info;
}

absl::Status ParseIdentifyControllerNvm(const uint8_t* data, size_t len, ControllerInfo* info) {
  if (data == nullptr) len = 0;
  RETURN_IF_ERROR(CheckLength(len, sizeof(nvme_id_ctrl_nvm), "Identify Controller (NVM)"));
  using T = nvme_id_ctrl_nvm;
  info->vsl = data[offsetof(T, vsl)];
  info->wzsl = data[offsetof(T, wzsl)];
  info->dmrl = data[offsetof(T, dmrl)];
  info->dmrsl = LoadLe32(NVMF_FIELD_PTR(data, T, dmrsl));
  info->dmsl = LoadLe64(NVMF_FIELD_PTR(data, T, dmsl));
  return absl::OkStatus();
}

uint64_t NamespaceInfo::PhysicalBlockBytes() const {
  if (!optperf()) return lba_bytes;
  return (uint64_t{npwg} + 1) * lba_bytes;
}

absl::StatusOr<NamespaceInfo> ParseIdentifyNamespace(const uint8_t* data, size_t len) {
  if (data == nullptr) len = 0;
  RETURN_IF_ERROR(CheckLength(len, sizeof(nvme_id_ns), "Identify Namespace"));
  using T = nvme_id_ns;
  NamespaceInfo ns;
  ns.nsze = LoadLe64(NVMF_FIELD_PTR(data, T, nsze));
  ns.ncap = LoadLe64(NVMF_FIELD_PTR(data, T, ncap));
  ns.nuse = LoadLe64(NVMF_FIELD_PTR(data, T, nuse));
  ns.nsfeat = data[offsetof(T, nsfeat)];
  ns.nlbaf = data[offsetof(T, nlbaf)];
  ns.flbas = data[offsetof(T, flbas)];
  ns.nmic = data[offsetof(T, nmic)];
  ns.dlfeat = data[offsetof(T, dlfeat)];
  ns.noiob = LoadLe16(NVMF_FIELD_PTR(data, T, noiob));
  const uint8_t* nvmcap = NVMF_FIELD_PTR(data, T, nvmcap);
  ns.nvmcap = LoadLe64(nvmcap + 8) != 0 ? std::numeric_limits<uint64_t>::max() : LoadLe64(nvmcap);
  ns.npwg = LoadLe16(NVMF_FIELD_PTR(data, T, npwg));
  ns.npwa = LoadLe16(NVMF_FIELD_PTR(data, T, npwa));
  ns.npdg = LoadLe16(NVMF_FIELD_PTR(data, T, npdg));
  ns.npda = LoadLe16(NVMF_FIELD_PTR(data, T, npda));
  ns.nows = LoadLe16(NVMF_FIELD_PTR(data, T, nows));
  ns.anagrpid = LoadLe32(NVMF_FIELD_PTR(data, T, anagrpid));
  ns.nguid = CopyArray<16>(NVMF_FIELD_PTR(data, T, nguid));
  ns.eui64 = CopyArray<8>(NVMF_FIELD_PTR(data, T, eui64));

  // FLBAS bits 3:0 are the low bits of the format index; bits 6:5 its high bits once more than 16
  // formats exist (NVM Command Set 1.0 Figure 97: with NLBAF, 0-based, below 16 they are ignored).
  ns.format_index = ns.flbas & NVME_NS_FLBAS_LOWER_MASK;
  if (ns.nlbaf >= 16) {
    ns.format_index |= ((ns.flbas & NVME_NS_FLBAS_HIGHER_MASK) >> 5) << 4;
  }
  ns.metadata_extended = ns.flbas & NVME_NS_FLBAS_META_EXT;

  // libnvme's lbaf[64] covers bytes 128..383; an index <= 63 stays inside the 4096 bytes.
  constexpr size_t kMaxFormats = sizeof(T::lbaf) / sizeof(T::lbaf[0]);
  static_assert(kMaxFormats == 64);
  auto lbaf_at = [&](unsigned index) {
    return data + offsetof(T, lbaf) + index * sizeof(nvme_lbaf);
  };
  std::string invalid;
  uint8_t lbads = 0;
  if (ns.nlbaf >= kMaxFormats) {
    invalid = absl::StrCat("NLBAF ", ns.nlbaf, " exceeds the maximum of ", kMaxFormats - 1);
  } else if (ns.format_index > ns.nlbaf) {
    invalid =
        absl::StrCat("FLBAS selects LBA format ", ns.format_index, " but NLBAF is ", ns.nlbaf);
  } else {
    const uint8_t* lbaf = lbaf_at(ns.format_index);
    ns.metadata_bytes = LoadLe16(lbaf + offsetof(nvme_lbaf, ms));
    lbads = lbaf[offsetof(nvme_lbaf, ds)];
    if (lbads < 9) {
      invalid = absl::StrCat("LBA format ", ns.format_index, " has LBADS ", lbads,
                             ": below the minimum of 9 (512 bytes)");
    } else if (lbads > 16) {
      invalid = absl::StrCat("LBA format ", ns.format_index, " has LBADS ", lbads,
                             ": above the supported maximum of 16 (64 KiB)");
    } else {
      ns.lba_bytes = 1u << lbads;
    }
  }
  if (ns.inactive()) {
    // An inactive NSID reports zeroes everywhere: its format is meaningless, not an error.
    if (!invalid.empty()) {
      ns.lba_bytes = 0;
      ns.metadata_bytes = 0;
    }
    return ns;
  }
  if (!invalid.empty()) return absl::DataLossError(absl::StrCat("Identify Namespace: ", invalid));
  if (ns.nsze > (std::numeric_limits<uint64_t>::max() >> lbads)) {
    return absl::DataLossError(absl::StrCat("Identify Namespace: NSZE ", ns.nsze, " blocks of 2^",
                                            lbads, " bytes overflows 64 bits"));
  }
  return ns;
}

std::string NamespaceIds::NguidHex() const {
  return nguid && !AllZero(*nguid) ? Hex(nguid->data(), nguid->size()) : "";
}

std::string NamespaceIds::Eui64Hex() const {
  return eui64 && !AllZero(*eui64) ? Hex(eui64->data(), eui64->size()) : "";
}

std::string NamespaceIds::UuidString() const {
  if (!uuid || AllZero(*uuid)) return "";
  const uint8_t* u = uuid->data();
  return absl::StrCat(Hex(u, 4), "-", Hex(u + 4, 2), "-", Hex(u + 6, 2), "-", Hex(u + 8, 2), "-",
                      Hex(u + 10, 6));
}

std::string NamespaceIds::StableId() const {
  if (std::string h = NguidHex(); !h.empty()) return "nguid." + h;
  if (std::string h = Eui64Hex(); !h.empty()) return "eui." + h;
  if (std::string u = UuidString(); !u.empty()) return "uuid." + u;
  return "";
}

absl::StatusOr<NamespaceIds> ParseNamespaceIdDescriptors(const uint8_t* data, size_t len) {
  if (data == nullptr) len = 0;
  NamespaceIds ids;
  size_t off = 0;
  while (off < len) {
    const uint8_t nidt = data[off];
    if (nidt == 0) break;  // end of list
    if (len - off < sizeof(nvme_ns_id_desc)) {
      return absl::DataLossError(absl::StrCat("namespace ID descriptor at offset ", off,
                                              ": header truncated (", len - off, " bytes left)"));
    }
    const uint8_t nidl = data[off + offsetof(nvme_ns_id_desc, nidl)];
    const size_t value_off = off + sizeof(nvme_ns_id_desc);
    if (len - value_off < nidl) {
      return absl::DataLossError(absl::StrCat("namespace ID descriptor at offset ", off, ": NIDL ",
                                              nidl, " runs past the end (", len - value_off,
                                              " bytes left)"));
    }
    const uint8_t* value = data + value_off;
    size_t expected = 0;
    bool duplicate = false;
    switch (nidt) {
      case NVME_NIDT_EUI64:
        expected = NVME_NIDT_EUI64_LEN;
        duplicate = ids.eui64.has_value();
        if (nidl == expected) ids.eui64 = CopyArray<8>(value);
        break;
      case NVME_NIDT_NGUID:
        expected = NVME_NIDT_NGUID_LEN;
        duplicate = ids.nguid.has_value();
        if (nidl == expected) ids.nguid = CopyArray<16>(value);
        break;
      case NVME_NIDT_UUID:
        expected = NVME_NIDT_UUID_LEN;
        duplicate = ids.uuid.has_value();
        if (nidl == expected) ids.uuid = CopyArray<16>(value);
        break;
      case NVME_NIDT_CSI:
        expected = NVME_NIDT_CSI_LEN;
        duplicate = ids.csi.has_value();
        if (nidl == expected) ids.csi = value[0];
        break;
      default:
        // A type this host does not know (reserved in Base 2.0): skip it by its NIDL.
        expected = nidl;
        break;
    }
    if (duplicate) {
      return absl::DataLossError(absl::StrCat("namespace ID descriptor at offset ", off, ": NIDT ",
                                              nidt, " (", NidtName(nidt), ") appears twice"));
    }
    if (nidl != expected) {
      return absl::DataLossError(absl::StrCat("namespace ID descriptor at offset ", off, ": NIDL ",
                                              nidl, " for NIDT ", nidt, " (", NidtName(nidt),
                                              "), expected ", expected));
    }
    off = value_off + nidl;
  }
  return ids;
}

NamespaceIds NamespaceIdsFromIdentify(const NamespaceInfo& ns) {
  NamespaceIds ids;
  if (!AllZero(ns.nguid)) ids.nguid = ns.nguid;
  if (!AllZero(ns.eui64)) ids.eui64 = ns.eui64;
  return ids;
}

absl::StatusOr<std::vector<uint32_t>> ParseActiveNamespaceList(const uint8_t* data, size_t len) {
  if (data == nullptr) len = 0;
  if (len % 4 != 0) {
    return absl::DataLossError(
        absl::StrCat("active namespace list is ", len, " bytes, not a multiple of 4"));
  }
  std::vector<uint32_t> nsids;
  for (size_t off = 0; off < len; off += 4) {
    const uint32_t nsid = LoadLe32(data + off);
    if (nsid == 0) break;  // end of list
    if (nsid == 0xFFFFFFFF) {
      return absl::DataLossError(absl::StrCat("active namespace list entry ", off / 4,
                                              " is the broadcast NSID FFFFFFFFh"));
    }
    if (!nsids.empty() && nsid <= nsids.back()) {
      return absl::DataLossError(absl::StrCat("active namespace list entry ", off / 4, " (NSID ",
                                              nsid, ") does not follow NSID ", nsids.back(),
                                              " in increasing order"));
    }
    nsids.push_back(nsid);
  }
  return nsids;
}

#undef NVMF_FIELD_PTR

}  // namespace nvmf_ublk::nvme
