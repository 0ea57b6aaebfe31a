// Identify data and log pages the target returns, in the layouts of libnvme's structures
// (<nvme/types.h>: nvme_id_ctrl, nvme_id_ns, nvme_ns_id_desc, nvme_id_ctrl_nvm, nvme_ana_log,
// nvmf_discovery_log), which are only used inside pages.cc. Pure functions of their inputs, so they
// are tested by feeding the result to the initiator's own parsers (nvme/identify.h, log_pages.h).
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_PAGES_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_PAGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "config.h"
#include "subsystem.h"

namespace nvmf_ublk::target {

inline constexpr uint32_t kIdentifySize = 4096;

// What Identify Controller (CNS 01h) reports (Base 2.0 Figure 275, NVMe-oF 1.1 Figure 28).
struct ControllerIdentity {
  uint16_t cntlid = 0;
  bool discovery = false;  // CNTRLTYPE 2, no namespaces, discovery log change notices
  std::string subnqn, serial, model, firmware;
  uint8_t mdts = 0;
  uint16_t maxcmd = 0;
  uint32_t nn = 0;
  uint32_t in_capsule_data = 0;  // IOCCSZ = (64 + this) / 16
  uint32_t ana_group_max = 0;    // ANAGRPMAX and NANAGRPID
  uint8_t anatt = 10;            // ANATT, seconds
  bool tbkas = false;            // CTRATT bit 6: traffic-based keep-alive
  uint16_t cqt = 0;              // CQT, ms (bytes 387:386)
  bool vwc = false;
};

// Each Fill* writes exactly kIdentifySize bytes to `out`.
void FillIdentifyController(const ControllerIdentity& id, uint8_t* out);
// CNS 00h for an active namespace.
void FillIdentifyNamespace(const Namespace& ns, uint8_t* out);
// CNS 02h: active NSIDs greater than `after`, ascending, at most 1024.
void FillActiveNamespaceList(const Subsystem& sub, uint32_t after, uint8_t* out);
// CNS 03h: EUI-64 (when configured), NGUID, UUID, CSI (NVM).
void FillNamespaceIdDescriptors(const Namespace& ns, uint8_t* out);
// CNS 06h, CSI 00h: NVM command set limits (DMRL, DMRSL).
void FillIdentifyControllerNvm(uint8_t dmrl, uint32_t dmrsl, uint8_t* out);

struct AnaGroupState {
  uint32_t grpid = 0;
  AnaState state = AnaState::kOptimized;
  uint64_t chgcnt = 0;
  std::vector<uint32_t> nsids;  // ascending
};
// ANA log (LID 0Ch, Base 2.0 Figure 230). With `rgo` (LSP bit 0) the NSID lists are left out.
std::vector<uint8_t> BuildAnaLog(uint64_t chgcnt, const std::vector<AnaGroupState>& groups,
                                 bool rgo);

// One Discovery Log entry (NVMe-oF 1.1 Figure 40); TRTYPE is always TCP, CNTLID FFFFh.
struct DiscoveryRecord {
  uint8_t subtype = 2;  // 1 referral, 2 NVM subsystem
  uint8_t adrfam = 1;   // 1 IPv4, 2 IPv6
  uint16_t portid = 0;
  std::string subnqn;
  std::string traddr;
  std::string trsvcid;
};
// Discovery log (LID 70h): 1024-byte header then 1024 bytes per record.
std::vector<uint8_t> BuildDiscoveryLog(uint64_t genctr,
                                       const std::vector<DiscoveryRecord>& records);

}  // namespace nvmf_ublk::target

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_PAGES_H_
