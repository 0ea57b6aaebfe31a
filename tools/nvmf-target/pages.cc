#include "pages.h"

#include <nvme/types.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "base/endian.h"
#include "nvme/log_pages.h"

namespace nvmf_ublk::target {
namespace {

static_assert(sizeof(nvme_id_ctrl) == kIdentifySize);
static_assert(sizeof(nvme_id_ns) == kIdentifySize);
static_assert(sizeof(nvme_id_ctrl_nvm) == kIdentifySize);
static_assert(offsetof(nvme_id_ctrl, cntrltype) == 111);
static_assert(offsetof(nvme_id_ctrl, kas) == 320);
static_assert(offsetof(nvme_id_ctrl, anagrpmax) == 344);
static_assert(offsetof(nvme_id_ctrl, sqes) == 512);
static_assert(offsetof(nvme_id_ctrl, vwc) == 525);
static_assert(offsetof(nvme_id_ctrl, sgls) == 536);
static_assert(offsetof(nvme_id_ctrl, subnqn) == 768);
static_assert(offsetof(nvme_id_ctrl, ioccsz) == 1792);
static_assert(offsetof(nvme_id_ns, nmic) == 30);
static_assert(offsetof(nvme_id_ns, anagrpid) == 92);
static_assert(offsetof(nvme_id_ns, nguid) == 104);
static_assert(offsetof(nvme_id_ns, lbaf) == 128);
static_assert(sizeof(nvme_ana_log) == 16);
static_assert(sizeof(nvme_ana_group_desc) == 32);
static_assert(sizeof(nvmf_discovery_log) == nvme::kDiscoveryLogHeaderBytes);
static_assert(sizeof(nvmf_disc_log_entry) == nvme::kDiscoveryLogEntryBytes);
static_assert(offsetof(nvmf_disc_log_entry, trsvcid) == 32);
static_assert(offsetof(nvmf_disc_log_entry, subnqn) == 256);
static_assert(offsetof(nvmf_disc_log_entry, traddr) == 512);
static_assert(offsetof(nvmf_disc_log_entry, tsas) == 768);

// Little-endian store into a libnvme __le field of any width.
template <typename Field, typename Value>
void Put(Field& field, Value v) {
  StoreLe<Field>(&field, static_cast<Field>(v));
}

// ASCII field padded with spaces (SN, MN, FR: ASCII strings, space padded).
template <size_t N>
void PutAscii(char (&field)[N], const std::string& s) {
  std::memset(field, ' ', N);
  std::memcpy(field, s.data(), std::min(N, s.size()));
}

// Text padded with NULs (SUBNQN, discovery TRADDR/TRSVCID, as nvmet does).
template <size_t N>
void PutText(char (&field)[N], const std::string& s) {
  std::memset(field, 0, N);
  std::memcpy(field, s.data(), std::min(N - 1, s.size()));
}

void PutNvmCap(uint8_t (&field)[16], uint64_t bytes) {
  std::memset(field, 0, sizeof(field));
  StoreLe64(field, bytes);
}

}  // namespace

void FillIdentifyController(const ControllerIdentity& id, uint8_t* out) {
  nvme_id_ctrl c;
  std::memset(&c, 0, sizeof(c));
  PutAscii(c.sn, id.serial);
  PutAscii(c.mn, id.model);
  PutAscii(c.fr, id.firmware);
  c.rab = 6;
  // CMIC bit 1: multiple controllers may attach; bit 3: ANA reporting.
  c.cmic = id.discovery ? 0 : static_cast<uint8_t>((1u << 1) | (1u << 3));
  c.mdts = id.mdts;
  Put(c.cntlid, id.cntlid);
  Put(c.ver, 0x00020000u);  // NVMe 2.0
  // OAES bit 11: ANA change notices; bit 31: discovery log page change notices.
  Put(c.oaes, id.discovery ? (1u << 31) : (1u << 11));
  // Bit 0: 128-bit host identifier; bit 6: traffic-based keep-alive.
  Put(c.ctratt, 1u | (id.tbkas ? 1u << 6 : 0u));
  c.cntrltype = id.discovery ? 2 : 1;
  c.acl = 3;        // 4 concurrent Abort commands
  c.aerl = 3;       // 4 outstanding AERs
  c.lpa = 1u << 2;  // extended data for Get Log Page (64-bit offsets)
  Put(c.kas, 10);   // keep alive granularity 1 s (100 ms units), as nvmet
  if (!id.discovery) {
    c.anatt = id.anatt;
    c.anacap = 0x1F;  // optimized, non-optimized, inaccessible, persistent loss, change
    Put(c.anagrpmax, id.ana_group_max);
    Put(c.nanagrpid, id.ana_group_max);
  }
  // CQT: reserved bytes in libnvme 1.3's layout (NVMe 2.1 names them).
  StoreLe16(reinterpret_cast<uint8_t*>(&c) + 386, id.cqt);
  c.sqes = 0x66;
  c.cqes = 0x44;
  Put(c.maxcmd, id.maxcmd);
  Put(c.nn, id.nn);
  if (!id.discovery) {
    Put(c.oncs, (1u << 2) | (1u << 3));  // Dataset Management, Write Zeroes
    // VWC bit 0: present; bits 2:1 = 11b: Flush with NSID FFFFFFFFh supported.
    c.vwc = id.vwc ? 0x07 : 0x00;
  }
  // SGLS: SGLs supported (bits 1:0 = 01b); bit 20: SGL offset addressing for in-capsule data.
  Put(c.sgls, 1u | (1u << 20));
  PutText(c.subnqn, id.subnqn);
  Put(c.ioccsz, (64 + id.in_capsule_data) / 16);
  Put(c.iorcsz, 1u);
  Put(c.icdoff, 0);
  c.fcatt = 0;  // dynamic controller model
  c.msdbd = 1;
  std::memcpy(out, &c, sizeof(c));
}

void FillIdentifyNamespace(const Namespace& ns, uint8_t* out) {
  nvme_id_ns n;
  std::memset(&n, 0, sizeof(n));
  Put(n.nsze, ns.blocks());
  Put(n.ncap, ns.blocks());
  Put(n.nuse, ns.blocks());
  n.nlbaf = 0;  // one format
  n.flbas = 0;
  n.nmic = 1;       // shared: several controllers may access it
  n.dlfeat = 0x09;  // deallocated blocks read as zeroes; Write Zeroes DEAC supported
  PutNvmCap(n.nvmcap, ns.blocks() << ns.lba_shift());
  Put(n.anagrpid, ns.ana_group());
  std::memcpy(n.nguid, ns.nguid().data(), 16);
  if (ns.eui64()) std::memcpy(n.eui64, ns.eui64()->data(), 8);
  Put(n.lbaf[0].ms, 0);
  n.lbaf[0].ds = static_cast<uint8_t>(ns.lba_shift());
  n.lbaf[0].rp = 0;
  std::memcpy(out, &n, sizeof(n));
}

void FillActiveNamespaceList(const Subsystem& sub, uint32_t after, uint8_t* out) {
  std::memset(out, 0, kIdentifySize);
  size_t i = 0;
  for (const auto& ns : sub.namespaces()) {
    if (ns->nsid() <= after) continue;
    if (i == kIdentifySize / 4) break;
    StoreLe32(out + 4 * i++, ns->nsid());
  }
}

void FillNamespaceIdDescriptors(const Namespace& ns, uint8_t* out) {
  std::memset(out, 0, kIdentifySize);
  size_t off = 0;
  auto add = [&](uint8_t nidt, const uint8_t* nid, uint8_t nidl) {
    out[off + offsetof(nvme_ns_id_desc, nidt)] = nidt;
    out[off + offsetof(nvme_ns_id_desc, nidl)] = nidl;
    std::memcpy(out + off + sizeof(nvme_ns_id_desc), nid, nidl);
    off += sizeof(nvme_ns_id_desc) + nidl;
  };
  if (ns.eui64()) add(NVME_NIDT_EUI64, ns.eui64()->data(), 8);
  add(NVME_NIDT_NGUID, ns.nguid().data(), 16);
  add(NVME_NIDT_UUID, ns.uuid().data(), 16);
  const uint8_t csi = NVME_CSI_NVM;
  add(NVME_NIDT_CSI, &csi, 1);
}

void FillIdentifyControllerNvm(uint8_t dmrl, uint32_t dmrsl, uint8_t* out) {
  nvme_id_ctrl_nvm c;
  std::memset(&c, 0, sizeof(c));
  c.dmrl = dmrl;
  Put(c.dmrsl, dmrsl);
  std::memcpy(out, &c, sizeof(c));
}

std::vector<uint8_t> BuildAnaLog(uint64_t chgcnt, const std::vector<AnaGroupState>& groups,
                                 bool rgo) {
  size_t size = sizeof(nvme_ana_log);
  for (const AnaGroupState& g : groups) {
    size += sizeof(nvme_ana_group_desc) + (rgo ? 0 : 4 * g.nsids.size());
  }
  std::vector<uint8_t> log(size, 0);
  auto* hdr = reinterpret_cast<nvme_ana_log*>(log.data());
  Put(hdr->chgcnt, chgcnt);
  Put(hdr->ngrps, groups.size());
  size_t off = sizeof(nvme_ana_log);
  for (const AnaGroupState& g : groups) {
    // Descriptors follow 4-byte NSID lists, so they are not 8-byte aligned in the log: build each
    // one aside and copy it in.
    nvme_ana_group_desc d;
    std::memset(&d, 0, sizeof(d));
    Put(d.grpid, g.grpid);
    Put(d.nnsids, rgo ? 0 : g.nsids.size());
    Put(d.chgcnt, g.chgcnt);
    d.state = static_cast<uint8_t>(g.state);
    std::memcpy(log.data() + off, &d, sizeof(d));
    off += sizeof(nvme_ana_group_desc);
    if (rgo) continue;
    for (uint32_t nsid : g.nsids) {
      StoreLe32(log.data() + off, nsid);
      off += 4;
    }
  }
  return log;
}

std::vector<uint8_t> BuildDiscoveryLog(uint64_t genctr,
                                       const std::vector<DiscoveryRecord>& records) {
  std::vector<uint8_t> log(
      sizeof(nvmf_discovery_log) + records.size() * sizeof(nvmf_disc_log_entry), 0);
  auto* hdr = reinterpret_cast<nvmf_discovery_log*>(log.data());
  Put(hdr->genctr, genctr);
  Put(hdr->numrec, records.size());
  Put(hdr->recfmt, 0);
  for (size_t i = 0; i < records.size(); ++i) {
    const DiscoveryRecord& r = records[i];
    auto* e = reinterpret_cast<nvmf_disc_log_entry*>(log.data() + sizeof(nvmf_discovery_log) +
                                                     i * sizeof(nvmf_disc_log_entry));
    e->trtype = NVMF_TRTYPE_TCP;
    e->adrfam = r.adrfam;
    e->subtype = r.subtype;
    // TREQ: secure channel not specified (bits 1:0 = 00b); bit 2: SQ flow control disable allowed.
    e->treq = 1u << 2;
    Put(e->portid, r.portid);
    Put(e->cntlid, 0xFFFF);
    Put(e->asqsz, 32);
    Put(e->eflags, 0);
    PutText(e->trsvcid, r.trsvcid);
    PutText(e->subnqn, r.subnqn);
    PutText(e->traddr, r.traddr);
    e->tsas.tcp.sectype = NVMF_TCP_SECTYPE_NONE;
  }
  return log;
}

}  // namespace nvmf_ublk::target
