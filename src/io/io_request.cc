#include "io/io_request.h"

#include <cerrno>

#include "base/status.h"

namespace nvmf_ublk::io {

nvme::RetryClass IoResult::retry_class() const {
  if (err == 0) return nvme::Classify(nvme::CompletionStatus{status});
  switch (-err) {
    case ENODEV:
    case EINVAL:
      return nvme::RetryClass::kFail;
    default:
      return nvme::RetryClass::kFailover;
  }
}

absl::Status IoResult::ToStatus(const char* what) const {
  if (err == 0) return nvme::ToStatus(nvme::CompletionStatus{status}, what);
  std::string context(what);
  switch (-err) {
    case ECONNABORTED:
      return absl::UnavailableError(context + ": connection to the controller was lost");
    case ENOTCONN:
      return absl::UnavailableError(context + ": controller is not connected");
    case ETIMEDOUT:
      return absl::DeadlineExceededError(context + ": command timed out");
    case EBADMSG:
      return absl::DataLossError(context + ": data digest mismatch");
    case ENODEV:
      return absl::NotFoundError(context + ": controller was removed");
    default:
      return ErrnoToStatus(err, context);
  }
}

}  // namespace nvmf_ublk::io
