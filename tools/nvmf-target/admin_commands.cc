// Fabrics and admin commands of a target connection (NVMe-oF 1.1 §3.3, Base 2.0 §5).
#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "auth/dhchap_messages.h"
#include "base/clock.h"
#include "base/endian.h"
#include "base/log.h"
#include "connection.h"
#include "controller.h"
#include "internal.h"
#include "nvme/log_pages.h"
#include "pages.h"
#include "target.h"

namespace nvmf_ublk::target {
namespace {

constexpr uint32_t kConnectAuthReqAtr = 1u << 17;  // Connect response DW0: AUTHREQ.ATR
constexpr uint16_t kInvalidField = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScInvalidField, true);

// NUL-terminated text of a fixed-size Connect data field.
std::string TextField(const char* field, size_t size) {
  return std::string(field, strnlen(field, size));
}

}  // namespace

Connection::Outcome Connection::ExecuteFabrics(Request& req) {
  const auto& f = reinterpret_cast<const nvme::FabricsSqe&>(req.sqe);
  const uint8_t* ts = f.ts;
  switch (static_cast<nvme::FabricsType>(f.fctype)) {
    case nvme::FabricsType::kConnect:
      if (state_ != State::kWaitConnect) {
        req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScCommandSequenceError, true);
        return Outcome::kRespond;
      }
      return ExecuteConnect(req);
    case nvme::FabricsType::kPropertyGet: {
      if (qid_ != 0) break;
      const uint32_t ofst = LoadLe32(ts + 4);
      uint64_t value = 0;
      switch (static_cast<nvme::Property>(ofst)) {
        case nvme::Property::kCap:
          // MQES (0-based), CQR, TO = 15 x 500 ms, CSS bit 37: NVM command set. MPSMIN 0 (4 KiB).
          value = uint64_t{target_->config().queue_size - 1u} | (1ull << 16) | (15ull << 24) |
                  (1ull << 37);
          if (target_->config().cap_override) value = *target_->config().cap_override;
          break;
        case nvme::Property::kVs:
          value = 0x00020000;
          break;
        case nvme::Property::kCc:
          value = ctrl_->cc.load();
          break;
        case nvme::Property::kCsts:
          value = ctrl_->csts.load();
          break;
        default:
          req.status = kInvalidField;
          return Outcome::kRespond;
      }
      req.dw0 = static_cast<uint32_t>(value);
      req.dw1 = static_cast<uint32_t>(value >> 32);
      return Outcome::kRespond;
    }
    case nvme::FabricsType::kPropertySet: {
      if (qid_ != 0) break;
      if (LoadLe32(ts + 4) != static_cast<uint32_t>(nvme::Property::kCc)) {
        req.status = kInvalidField;  // CAP, VS and CSTS are read-only; NSSR is not supported
        return Outcome::kRespond;
      }
      WriteCc(static_cast<uint32_t>(LoadLe64(ts + 8)));
      return Outcome::kRespond;
    }
    case nvme::FabricsType::kAuthSend:
      return ExecuteAuth(req, true);
    case nvme::FabricsType::kAuthReceive:
      return ExecuteAuth(req, false);
    case nvme::FabricsType::kDisconnect:
      Respond(req);
      Close("host sent Disconnect");
      return Outcome::kNone;
    default:
      break;
  }
  req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScInvalidOpcode, true);
  return Outcome::kRespond;
}

void Connection::WriteCc(uint32_t value) {
  const uint32_t old = ctrl_->cc.exchange(value);
  uint32_t csts = ctrl_->csts.load();
  const bool en = value & nvme::kCcEnable, was = old & nvme::kCcEnable;
  if (en && !was) {
    // CC.MPS must be 0 (CAP.MPSMIN/MPSMAX are 4 KiB), CC.CSS the NVM command set, and an I/O
    // controller needs 64-byte SQEs and 16-byte CQEs; otherwise the controller reports a fatal
    // status (CSTS.CFS), as nvmet does.
    bool ok = ((value >> 7) & 0xF) == 0 && ((value >> 4) & 0x7) == 0;
    if (!ctrl_->discovery()) ok = ok && ((value >> 16) & 0xF) == 6 && ((value >> 20) & 0xF) == 4;
    if (ok && target_->config().never_ready) {
      NLOG(INFO) << name_ << ": CC.EN set; CSTS.RDY stays 0 (never_ready)";
    } else {
      csts |= ok ? nvme::kCstsReady : nvme::kCstsFatal;
    }
    if (ok) {
      NLOG(INFO) << name_ << ": controller enabled";
    } else {
      NLOG(WARNING) << name_ << ": CC 0x" << absl::StrFormat("%08x", value)
                    << " is invalid: CSTS.CFS";
    }
  } else if (!en && was) {
    NLOG(INFO) << name_ << ": controller reset (CC.EN 1 -> 0): closing its I/O queues";
    csts &= ~(nvme::kCstsReady | nvme::kCstsFatal | nvme::kCstsShstMask);
    ctrl_->ShutdownIoQueues();
  }
  if ((value & nvme::kCcShnMask) != 0) {
    if ((old & nvme::kCcShnMask) == 0) NLOG(INFO) << name_ << ": controller shutdown";
    csts = (csts & ~nvme::kCstsShstMask) | nvme::kCstsShstComplete;
  } else {
    csts &= ~nvme::kCstsShstMask;
  }
  ctrl_->csts = csts;
}

Connection::Outcome Connection::ExecuteConnect(Request& req) {
  const uint8_t* ts = reinterpret_cast<const nvme::FabricsSqe&>(req.sqe).ts;
  const uint16_t recfmt = LoadLe16(ts + 0);  // byte 40
  const uint16_t qid = LoadLe16(ts + 2);     // byte 42
  const uint16_t sqsize = LoadLe16(ts + 4);  // byte 44, 0-based
  const uint8_t cattr = ts[6];               // byte 46
  const uint32_t kato = LoadLe32(ts + 8);    // byte 48
  // Connect Invalid Parameters (NVMe-oF 1.1 Figure 23): DW0 bits 15:0 IPO (offset of the bad
  // field), bit 16 IATTR (1: in the Connect data, 0: in the SQE).
  auto invalid = [&](bool in_data, uint32_t offset, const std::string& why) {
    NLOG(WARNING) << name_ << ": Connect rejected: " << why;
    req.status =
        nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectInvalidParameters, true);
    req.dw0 = offset | (in_data ? 1u << 16 : 0u);
    return Outcome::kRespond;
  };
  if (recfmt != 0) {
    req.status =
        nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectIncompatibleFormat, true);
    return Outcome::kRespond;
  }
  if (req.data.size() != sizeof(nvme::ConnectData)) {
    req.status = nvme::MakeStatus(nvme::kSctGeneric, kScDataSglLengthInvalid, true);
    return Outcome::kRespond;
  }
  nvme::ConnectData cd;
  std::memcpy(&cd, req.data.data(), sizeof(cd));
  const std::string subnqn = TextField(cd.subnqn, sizeof(cd.subnqn));
  const std::string hostnqn = TextField(cd.hostnqn, sizeof(cd.hostnqn));
  std::array<uint8_t, 16> hostid;
  std::memcpy(hostid.data(), cd.hostid, hostid.size());
  target_->RecordConnectHostId(hostid);

  const Subsystem* sub = target_->FindSubsystem(subnqn);
  if (sub == nullptr || !sub->OnPort(port_index_)) {
    return invalid(true, offsetof(nvme::ConnectData, subnqn),
                   absl::StrFormat("unknown subsystem '%s'", subnqn));
  }
  // An empty host NQN is what SPDK's initiator sends unless told one; nvmet and SPDK's target
  // accept it where any host may connect, and so does this one. A malformed one is refused.
  if (!hostnqn.empty() && !ValidateNqn(hostnqn).ok()) {
    return invalid(true, offsetof(nvme::ConnectData, hostnqn),
                   absl::StrFormat("invalid host NQN '%s'", hostnqn));
  }
  if (!sub->HostAllowed(hostnqn)) {
    NLOG(WARNING) << name_ << ": Connect rejected: host " << hostnqn << " may not access "
                  << subnqn;
    req.status = nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectInvalidHost, true);
    req.dw0 = offsetof(nvme::ConnectData, hostnqn) | (1u << 16);
    return Outcome::kRespond;
  }
  if (sqsize == 0 || sqsize >= target_->config().queue_size) {
    return invalid(false, 44,
                   absl::StrFormat("SQSIZE %u (0-based) outside 1..%u", sqsize,
                                   target_->config().queue_size - 1));
  }
  std::shared_ptr<Controller> ctrl;
  if (qid == 0) {
    if (cd.cntlid.get() != nvme::kAdminCntlidDynamic) {
      return invalid(true, offsetof(nvme::ConnectData, cntlid),
                     "admin queue CNTLID must be FFFFh (dynamic controller model)");
    }
    ctrl = target_->CreateController(sub, port_index_, hostnqn, hostid, kato);
    if (!ctrl) {
      req.status = nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScConnectControllerBusy);
      return Outcome::kRespond;
    }
    ctrl->AttachAdmin(this);
    last_admin_cmd_ns_ = MonotonicNanos();
  } else {
    if (sub->discovery()) return invalid(false, 42, "I/O queue to the discovery subsystem");
    ctrl = target_->FindController(cd.cntlid.get());
    if (!ctrl || &ctrl->subsystem() != sub) {
      return invalid(true, offsetof(nvme::ConnectData, cntlid),
                     absl::StrFormat("no controller %u in %s", cd.cntlid.get(), subnqn));
    }
    if (ctrl->hostnqn() != hostnqn) {
      return invalid(true, offsetof(nvme::ConnectData, hostnqn),
                     absl::StrFormat("host NQN %s differs from the admin queue's", hostnqn));
    }
    if (ctrl->hostid() != hostid) {
      return invalid(true, offsetof(nvme::ConnectData, hostid),
                     "host ID differs from the admin queue's");
    }
    if (qid > ctrl->max_qid()) {
      return invalid(false, 42,
                     absl::StrFormat("QID %u above the %u queues granted", qid, ctrl->max_qid()));
    }
    if (!ctrl->AttachIo(qid, this)) {
      return invalid(false, 42, absl::StrFormat("QID %u is already connected", qid));
    }
  }
  ctrl_ = std::move(ctrl);
  qid_ = qid;
  sq_entries_ = sqsize + 1u;
  sq_head_ = 1 % sq_entries_;
  sq_flow_control_disabled_ = cattr & nvme::kConnectAttrDisableSqFlowControl;
  req.dw0 = ctrl_->cntlid();
  if (auto ac = sub->AuthFor(hostnqn)) {
    auth_ = std::make_unique<auth::DhchapController>(std::move(ac), hostnqn, subnqn);
    req.dw0 |= kConnectAuthReqAtr;
  }
  name_ = absl::StrFormat("%s cntlid %u q%u", peer_, ctrl_->cntlid(), qid_);
  NLOG(INFO) << name_ << ": host " << hostnqn << " connected to " << subnqn << " (SQ "
             << sq_entries_ << (sq_flow_control_disabled_ ? ", no SQ flow control" : "")
             << (qid == 0 ? absl::StrFormat(", KATO %u ms", kato) : std::string()) << ")";
  SetState(State::kLive);
  return Outcome::kRespond;
}

Connection::Outcome Connection::ExecuteAuth(Request& req, bool send) {
  const uint8_t* ts = reinterpret_cast<const nvme::FabricsSqe&>(req.sqe).ts;
  if (!auth_ || ts[3] != auth::kSecpAuth || ts[1] != 1 || ts[2] != 1) {
    req.status = kInvalidField;  // no authentication here, or not DH-HMAC-CHAP
    req.dir = nvme::DataDirection::kNone;
    return Outcome::kRespond;
  }
  if (send) {
    if (LoadLe32(ts + 4) != req.data.size()) {
      req.status = kInvalidField;  // TL must match the data
      return Outcome::kRespond;
    }
    auth_->OnSend(req.data);
  } else {
    std::optional<auth::Bytes> m = auth_->OnReceive();
    if (!m || m->size() > req.xfer_len) {
      req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScCommandSequenceError, true);
      req.dir = nvme::DataDirection::kNone;
      return Outcome::kRespond;
    }
    // The message, zero-padded to the allocation length (as nvmet returns it).
    m->resize(req.xfer_len, 0);
    req.data = std::move(*m);
  }
  if (auth_->authenticated()) {
    NLOG(INFO) << name_ << ": host authenticated (DH-HMAC-CHAP)";
  } else if (auth_->step() == auth::DhchapController::Step::kFailed ||
             auth_->step() == auth::DhchapController::Step::kSendFailure1) {
    NLOG(WARNING) << name_ << ": authentication failed: " << auth_->failure();
  }
  return Outcome::kRespond;
}

Connection::Outcome Connection::ExecuteAdmin(Request& req) {
  if (!ctrl_->enabled()) {
    req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScCommandSequenceError, true);
    return Outcome::kRespond;
  }
  switch (static_cast<nvme::AdminOpcode>(req.sqe.opcode)) {
    case nvme::AdminOpcode::kIdentify:
      ExecuteIdentify(req);
      return Outcome::kRespond;
    case nvme::AdminOpcode::kGetLogPage:
      ExecuteGetLogPage(req);
      return Outcome::kRespond;
    case nvme::AdminOpcode::kSetFeatures:
      ExecuteSetFeatures(req);
      return Outcome::kRespond;
    case nvme::AdminOpcode::kGetFeatures:
      ExecuteGetFeatures(req);
      return Outcome::kRespond;
    case nvme::AdminOpcode::kKeepAlive:
      target_->stats_.keep_alives++;
      return Outcome::kRespond;
    case nvme::AdminOpcode::kAsyncEventRequest:
      if (aer_cids_.size() >= kMaxAers) {
        req.status = nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScAerLimitExceeded, true);
        return Outcome::kRespond;
      }
      aer_cids_.push_back(req.cid);  // completed by DeliverEvents() when an event comes
      DeliverEvents();
      return Outcome::kNone;
    case nvme::AdminOpcode::kAbort: {
      const uint32_t cdw10 = req.sqe.cdw10.get();
      const uint16_t sqid = cdw10 & 0xFFFF, cid = cdw10 >> 16;
      const bool aborted = sqid == 0 ? AbortHeld(cid) : ctrl_->AbortOnQueue(sqid, cid);
      NLOG(INFO) << name_ << ": Abort SQ " << sqid << " CID " << cid << ": "
                 << (aborted ? "aborted" : "not aborted");
      req.dw0 = aborted ? 0 : 1;  // DW0 bit 0: command not aborted
      return Outcome::kRespond;
    }
    default:
      req.status = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScInvalidOpcode, true);
      return Outcome::kRespond;
  }
}

void Connection::ExecuteIdentify(Request& req) {
  const uint32_t cdw10 = req.sqe.cdw10.get();
  const uint8_t cns = cdw10 & 0xFF;
  const uint8_t csi = req.sqe.cdw11.get() >> 24;
  const uint32_t nsid = req.sqe.nsid.get();
  if (req.xfer_len != kIdentifySize) {
    req.status = nvme::MakeStatus(nvme::kSctGeneric, kScDataSglLengthInvalid, true);
    return;
  }
  req.data.assign(kIdentifySize, 0);
  uint8_t* out = req.data.data();
  const Subsystem& sub = ctrl_->subsystem();
  const uint16_t invalid_ns = nvme::MakeStatus(nvme::kSctGeneric, nvme::kScInvalidNamespace, true);
  switch (cns) {
    case 0x00: {  // Identify Namespace
      if (sub.discovery()) {
        req.status = kInvalidField;
        return;
      }
      const Namespace* ns = sub.FindNamespace(nsid);
      if (ns != nullptr) {
        FillIdentifyNamespace(*ns, out);
        ApplyAdminAnswerMalice(nvme::AdminOpcode::kIdentify, cns, out, kIdentifySize);
      } else if (nsid == 0 || nsid > sub.max_nsid()) {
        req.status = invalid_ns;  // inactive NSIDs up to NN return zeroes
      }
      return;
    }
    case 0x01:
      FillIdentifyController(target_->IdentityFor(*ctrl_), out);
      ApplyAdminAnswerMalice(nvme::AdminOpcode::kIdentify, cns, out, kIdentifySize);
      return;
    case 0x02:
      if (nsid >= 0xFFFFFFFE) {
        req.status = invalid_ns;
        return;
      }
      FillActiveNamespaceList(sub, nsid, out);
      return;
    case 0x03: {
      const Namespace* ns = sub.FindNamespace(nsid);
      if (ns == nullptr) {
        req.status = invalid_ns;
        return;
      }
      FillNamespaceIdDescriptors(*ns, out);
      return;
    }
    case 0x05:  // I/O command set specific Identify Namespace (NVM: nothing to report)
      if (csi != 0 || sub.FindNamespace(nsid) == nullptr) req.status = kInvalidField;
      return;
    case 0x06:  // I/O command set specific Identify Controller
      if (csi != 0 || sub.discovery()) {
        req.status = kInvalidField;
        return;
      }
      FillIdentifyControllerNvm(target_->config().dsm_range_limit,
                                target_->config().dsm_range_size_limit, out);
      return;
    default:
      req.status = kInvalidField;
      return;
  }
}

void Connection::ExecuteGetLogPage(Request& req) {
  const uint32_t cdw10 = req.sqe.cdw10.get(), cdw11 = req.sqe.cdw11.get();
  const uint8_t lid = cdw10 & 0xFF;
  const uint8_t lsp = (cdw10 >> 8) & 0x7F;
  const uint64_t numd = ((uint64_t{cdw11 & 0xFFFF} << 16) | (cdw10 >> 16)) + 1;
  const uint64_t len = numd * 4;
  const uint64_t offset = req.sqe.cdw12.get() | (uint64_t{req.sqe.cdw13.get()} << 32);
  if (len != req.xfer_len) {
    req.status = nvme::MakeStatus(nvme::kSctGeneric, kScDataSglLengthInvalid, true);
    return;
  }
  if (offset % 4 != 0) {
    req.status = kInvalidField;
    return;
  }
  const uint16_t invalid_log =
      nvme::MakeStatus(nvme::kSctCommandSpecific, nvme::kScInvalidLogPage, true);
  std::vector<uint8_t> log;
  bool sized = true;
  switch (static_cast<nvme::LogPageId>(lid)) {
    case nvme::LogPageId::kDiscovery:
      if (!ctrl_->discovery()) {
        req.status = invalid_log;
        return;
      }
      log = target_->DiscoveryLog(ctrl_->hostnqn(), local_addr_, local_adrfam_);
      ApplyAdminAnswerMalice(nvme::AdminOpcode::kGetLogPage, lid, log.data(), log.size());
      break;
    case nvme::LogPageId::kAna:
      if (ctrl_->discovery()) {
        req.status = invalid_log;
        return;
      }
      log = target_->AnaLog(ctrl_->subsystem(), port_index_, lsp & nvme::kAnaLspRgo);
      ApplyAdminAnswerMalice(nvme::AdminOpcode::kGetLogPage, lid, log.data(), log.size());
      break;
    default:
      sized = false;  // error log (no entries) and everything else: zeroes
      break;
  }
  req.data.assign(len, 0);
  if (!sized) return;
  if (offset > log.size()) {
    req.status = kInvalidField;
    return;
  }
  const size_t n = std::min<uint64_t>(len, log.size() - offset);
  std::memcpy(req.data.data(), log.data() + offset, n);
}

void Connection::ExecuteSetFeatures(Request& req) {
  const uint8_t fid = req.sqe.cdw10.get() & 0xFF;
  const uint32_t cdw11 = req.sqe.cdw11.get();
  switch (static_cast<nvme::FeatureId>(fid)) {
    case nvme::FeatureId::kNumberOfQueues: {
      const uint32_t nsqr = cdw11 & 0xFFFF, ncqr = cdw11 >> 16;
      if (ctrl_->discovery() || nsqr == 0xFFFF || ncqr == 0xFFFF) {
        req.status = kInvalidField;
        return;
      }
      const uint32_t max = ctrl_->max_io_queues() - 1u;  // 0-based
      const uint32_t dw0 = std::min(nsqr, max) | (std::min(ncqr, max) << 16);
      ctrl_->queues_feature = dw0;
      ctrl_->queues_set = true;
      req.dw0 = dw0;
      return;
    }
    case nvme::FeatureId::kAsyncEventConfig:
      ctrl_->aec = cdw11;
      return;
    case nvme::FeatureId::kKeepAliveTimer:
      ctrl_->kato_ms = cdw11;
      return;
    default:
      if (fid == 0x06) {  // Volatile Write Cache: WCE in bit 0
        ctrl_->write_cache_enabled = cdw11 & 1;
        return;
      }
      req.status = kInvalidField;
      return;
  }
}

void Connection::ExecuteGetFeatures(Request& req) {
  const uint8_t fid = req.sqe.cdw10.get() & 0xFF;
  switch (static_cast<nvme::FeatureId>(fid)) {
    case nvme::FeatureId::kNumberOfQueues:
      if (ctrl_->discovery()) {
        req.status = kInvalidField;
        return;
      }
      req.dw0 = ctrl_->queues_set.load() ? ctrl_->queues_feature.load()
                                         : (ctrl_->max_io_queues() - 1u) * 0x10001u;
      return;
    case nvme::FeatureId::kAsyncEventConfig:
      req.dw0 = ctrl_->aec.load();
      return;
    case nvme::FeatureId::kKeepAliveTimer:
      req.dw0 = ctrl_->kato_ms.load();
      return;
    default:
      if (fid == 0x06) {
        req.dw0 = ctrl_->write_cache_enabled.load() ? 1 : 0;
        return;
      }
      req.status = kInvalidField;
      return;
  }
}

}  // namespace nvmf_ublk::target
