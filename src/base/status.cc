#include "base/status.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace nvmf_ublk {

absl::Status ErrnoToStatus(int err, std::string_view context) {
  if (err < 0) err = -err;
  if (err == 0) return absl::OkStatus();
  std::string msg(context);
  if (!msg.empty()) msg += ": ";
  msg += strerror(err);
  switch (err) {
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EPIPE:
    case ENOTCONN:
    case EAGAIN:
    case ESHUTDOWN:
      return absl::UnavailableError(msg);
    case ETIMEDOUT:
      return absl::DeadlineExceededError(msg);
    case EINVAL:
    case E2BIG:
    case ENAMETOOLONG:
      return absl::InvalidArgumentError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return absl::NotFoundError(msg);
    case EEXIST:
    case EADDRINUSE:
      return absl::AlreadyExistsError(msg);
    case ENOMEM:
    case ENOSPC:
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(msg);
    case EOPNOTSUPP:
    case ENOSYS:
    case ENOTTY:
      return absl::UnimplementedError(msg);
    case ECANCELED:
      return absl::CancelledError(msg);
    case EBUSY:
      return absl::FailedPreconditionError(msg);
    case EILSEQ:
    case EBADMSG:
    case EPROTO:
      return absl::DataLossError(msg);
    default:
      return absl::InternalError(msg);
  }
}

int StatusToErrno(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kInvalidArgument:
      return -EINVAL;
    case absl::StatusCode::kOutOfRange:
      return -ERANGE;
    case absl::StatusCode::kPermissionDenied:
      return -EACCES;
    case absl::StatusCode::kNotFound:
      return -ENODEV;
    case absl::StatusCode::kAlreadyExists:
      return -EEXIST;
    case absl::StatusCode::kResourceExhausted:
      return -ENOSPC;
    case absl::StatusCode::kUnimplemented:
      return -EOPNOTSUPP;
    case absl::StatusCode::kDeadlineExceeded:
      return -ETIMEDOUT;
    case absl::StatusCode::kCancelled:
      return -ECANCELED;
    case absl::StatusCode::kFailedPrecondition:
      return -EROFS;  // Write protection, reservation conflicts: the block layer's "not now, not
                      // here".
    default:
      return -EIO;  // kUnavailable, kDataLoss, kInternal, kAborted, kUnknown.
  }
}

}  // namespace nvmf_ublk
