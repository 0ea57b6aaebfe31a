// Status helpers shared by every layer.
//
// Conventions (DESIGN.md §8.5): absl::Status / StatusOr off the hot path, negative errno on it.
// The two conversion points between them are ErrnoToStatus() and StatusToErrno(); nothing else
// translates one into the other.
#ifndef NVMF_UBLK_BASE_STATUS_H_
#define NVMF_UBLK_BASE_STATUS_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace nvmf_ublk {

// Builds a Status from an errno value (positive or negative) with `context` in front of
// strerror's text: "connect 10.0.0.1:4420: Connection refused". The code follows the errno:
// ECONNREFUSED/ETIMEDOUT/... -> kUnavailable, EINVAL -> kInvalidArgument, EACCES ->
// kPermissionDenied.
absl::Status ErrnoToStatus(int err, std::string_view context);

// Negative errno that best represents `status` on the hot path (ublk results, io_uring).
// OK -> 0. Data loss and unknown errors map to -EIO.
int StatusToErrno(const absl::Status& status);

namespace internal {
inline absl::Status AsStatus(absl::Status s) { return s; }
template <typename T>
absl::Status AsStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal

}  // namespace nvmf_ublk

#define NVMF_STATUS_CONCAT_INNER_(a, b) a##b
#define NVMF_STATUS_CONCAT_(a, b) NVMF_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` (a Status or StatusOr) is not OK.
#define RETURN_IF_ERROR(expr)                                              \
  do {                                                                     \
    ::absl::Status nvmf_status_ = ::nvmf_ublk::internal::AsStatus((expr)); \
    if (!nvmf_status_.ok()) return nvmf_status_;                           \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates the StatusOr `expr`; returns its status if not OK,
// otherwise moves the value into `lhs` (which may be a declaration: `auto x`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  NVMF_ASSIGN_OR_RETURN_IMPL_(NVMF_STATUS_CONCAT_(nvmf_statusor_, __LINE__), lhs, expr)
#define NVMF_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

#endif  // NVMF_UBLK_BASE_STATUS_H_
