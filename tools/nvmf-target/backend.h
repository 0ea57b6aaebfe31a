// Storage behind a namespace: RAM, a file, or nothing (null).
//
// Calls come from several connection threads at once. Backends are thread-safe in the way a disk
// is: concurrent requests to disjoint ranges are independent; overlapping concurrent writes leave
// an unspecified mix, as on real media. Hot-path calls return 0 or a negative errno
// (DESIGN.md §8.5); construction returns a Status.
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_BACKEND_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace nvmf_ublk::target {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual uint64_t size_bytes() const = 0;
  // Ranges are checked by the caller: offset + len <= size_bytes().
  virtual int Read(uint64_t offset, uint8_t* dst, size_t len) = 0;
  virtual int Write(uint64_t offset, const uint8_t* src, size_t len) = 0;
  // Zeroes the range; `deallocate` allows releasing the space (reads return zeroes either way).
  virtual int WriteZeroes(uint64_t offset, uint64_t len, bool deallocate) = 0;
  virtual int Flush() = 0;
};

// Anonymous memory of `size` bytes (lazily allocated, zero filled).
absl::StatusOr<std::unique_ptr<Backend>> MakeRamBackend(uint64_t size);
// A regular file or block device, opened read-write (created if missing). `size` 0 uses its
// current size; a larger size extends a regular file.
absl::StatusOr<std::unique_ptr<Backend>> MakeFileBackend(const std::string& path, uint64_t size);
// Reads return zeroes, writes are discarded.
std::unique_ptr<Backend> MakeNullBackend(uint64_t size);

}  // namespace nvmf_ublk::target

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_BACKEND_H_
