#include "nvme/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_format.h"
#include "nvme/spec.h"

namespace nvmf_ublk::nvme {
namespace {

constexpr char kPayloadUrl[] = "nvmf-ublk/nvme-status";

const char* KnownName(CompletionStatus s) {
  switch (s.sct()) {
    case kSctGeneric:
      switch (s.sc()) {
        case kScSuccess:
          return "Successful Completion";
        case kScInvalidOpcode:
          return "Invalid Command Opcode";
        case kScInvalidField:
          return "Invalid Field in Command";
        case kScCidConflict:
          return "Command ID Conflict";
        case kScDataTransferError:
          return "Data Transfer Error";
        case kScPowerLossAbort:
          return "Commands Aborted due to Power Loss Notification";
        case kScInternalError:
          return "Internal Error";
        case kScAbortRequested:
          return "Command Abort Requested";
        case kScAbortSqDeleted:
          return "Command Aborted due to SQ Deletion";
        case kScInvalidNamespace:
          return "Invalid Namespace or Format";
        case kScCommandSequenceError:
          return "Command Sequence Error";
        case kScSglDataBlockInvalid:
          return "Invalid SGL Segment Descriptor";
        case kScNamespaceWriteProtected:
          return "Namespace is Write Protected";
        case kScTransientTransportError:
          return "Transient Transport Error";
        case kScLbaOutOfRange:
          return "LBA Out of Range";
        case kScCapacityExceeded:
          return "Capacity Exceeded";
        case kScNamespaceNotReady:
          return "Namespace Not Ready";
        case kScReservationConflict:
          return "Reservation Conflict";
        case kScFormatInProgress:
          return "Format In Progress";
      }
      break;
    case kSctCommandSpecific:
      switch (s.sc()) {
        case kScAbortLimitExceeded:
          return "Abort Command Limit Exceeded";
        case kScAerLimitExceeded:
          return "Asynchronous Event Request Limit Exceeded";
        case kScInvalidLogPage:
          return "Invalid Log Page";
        case kScConnectIncompatibleFormat:
          return "Connect Incompatible Format";
        case kScConnectControllerBusy:
          return "Connect Controller Busy";
        case kScConnectInvalidParameters:
          return "Connect Invalid Parameters";
        case kScConnectRestartDiscovery:
          return "Connect Restart Discovery";
        case kScConnectInvalidHost:
          return "Connect Invalid Host";
        case kScAuthRequired:
          return "Authentication Required";
      }
      break;
    case kSctMedia:
      switch (s.sc()) {
        case kScWriteFault:
          return "Write Fault";
        case kScUnrecoveredReadError:
          return "Unrecovered Read Error";
        case 0x82:
          return "End-to-end Guard Check Error";
        case 0x83:
          return "End-to-end Application Tag Check Error";
        case 0x84:
          return "End-to-end Reference Tag Check Error";
        case 0x85:
          return "Compare Failure";
        case kScAccessDenied:
          return "Access Denied";
        case 0x87:
          return "Deallocated or Unwritten Logical Block";
      }
      break;
    case kSctPath:
      switch (s.sc()) {
        case kScInternalPathError:
          return "Internal Path Error";
        case kScAnaPersistentLoss:
          return "Asymmetric Access Persistent Loss";
        case kScAnaInaccessible:
          return "Asymmetric Access Inaccessible";
        case kScAnaTransition:
          return "Asymmetric Access Transition";
        case kScControllerPathingError:
          return "Controller Pathing Error";
        case kScHostPathingError:
          return "Host Pathing Error";
        case kScAbortedByHost:
          return "Command Aborted By Host";
      }
      break;
  }
  return nullptr;
}

}  // namespace

const char* ToString(RetryClass c) {
  switch (c) {
    case RetryClass::kSuccess:
      return "success";
    case RetryClass::kFailover:
      return "failover";
    case RetryClass::kRetryLater:
      return "retry-later";
    case RetryClass::kRetry:
      return "retry";
    case RetryClass::kFail:
      return "fail";
  }
  return "?";
}

RetryClass Classify(CompletionStatus s) {
  if (s.ok()) return RetryClass::kSuccess;
  // DNR wins over everything, as in the Linux host (nvme_decide_disposition): the controller says
  // the same command will fail again.
  if (s.dnr()) return RetryClass::kFail;
  if (s.sct() == kSctPath) return RetryClass::kFailover;
  if (s.crd() != 0) return RetryClass::kRetryLater;
  if (s.sct() == kSctGeneric) {
    switch (s.sc()) {
      case kScAbortRequested:
      case kScAbortSqDeleted:
      case kScNamespaceNotReady:
      case kScTransientTransportError:
      case kScFormatInProgress:
        return RetryClass::kRetry;
      default:
        break;
    }
  }
  return RetryClass::kFail;
}

std::string StatusName(CompletionStatus s) {
  if (const char* name = KnownName(s)) return name;
  return absl::StrFormat("SCT %u SC 0x%02x", s.sct(), s.sc());
}

absl::Status ToStatus(CompletionStatus s, const char* what) {
  if (s.ok()) return absl::OkStatus();
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (Classify(s)) {
    case RetryClass::kFailover:
      code = absl::StatusCode::kUnavailable;
      break;
    case RetryClass::kRetry:
    case RetryClass::kRetryLater:
      code = absl::StatusCode::kAborted;
      break;
    default:
      if (s.sct() == kSctMedia) {
        code = s.sc() == kScAccessDenied ? absl::StatusCode::kPermissionDenied
                                         : absl::StatusCode::kDataLoss;
      } else if (s.sct() == kSctGeneric) {
        switch (s.sc()) {
          case kScLbaOutOfRange:
          case kScCapacityExceeded:
            code = absl::StatusCode::kOutOfRange;
            break;
          case kScInvalidOpcode:
          case kScInvalidField:
          case kScInvalidNamespace:
            code = absl::StatusCode::kInvalidArgument;
            break;
          case kScNamespaceWriteProtected:
            code = absl::StatusCode::kFailedPrecondition;
            break;
          case kScReservationConflict:
            code = absl::StatusCode::kPermissionDenied;
            break;
          default:
            break;
        }
      } else if (s.sct() == kSctCommandSpecific && s.sc() == kScConnectInvalidHost) {
        code = absl::StatusCode::kPermissionDenied;
      } else if (s.sct() == kSctCommandSpecific &&
                 (s.sc() == kScConnectInvalidParameters || s.sc() == kScInvalidLogPage)) {
        code = absl::StatusCode::kInvalidArgument;
      }
      break;
  }
  std::string msg =
      absl::StrFormat("%s: %s (sct 0x%x sc 0x%02x%s%s)", what, StatusName(s), s.sct(), s.sc(),
                      s.dnr() ? ", dnr" : "", s.crd() ? absl::StrFormat(", crd %u", s.crd()) : "");
  absl::Status st(code, msg);
  st.SetPayload(kPayloadUrl, absl::Cord(absl::StrFormat("%04x", s.raw)));
  return st;
}

std::optional<CompletionStatus> NvmeStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);
  if (!payload) return std::nullopt;
  std::string text(*payload);
  unsigned raw = 0;
  if (sscanf(text.c_str(), "%4x", &raw) != 1) return std::nullopt;
  return CompletionStatus{static_cast<uint16_t>(raw)};
}

RetryClass ClassifyStatus(const absl::Status& status) {
  if (status.ok()) return RetryClass::kSuccess;
  if (auto nvme = NvmeStatusOf(status)) return Classify(*nvme);
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return RetryClass::kFailover;
    case absl::StatusCode::kAborted:
      return RetryClass::kRetry;
    default:
      return RetryClass::kFail;
  }
}

}  // namespace nvmf_ublk::nvme
