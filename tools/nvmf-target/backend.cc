#include "backend.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace nvmf_ublk::target {
namespace {

class RamBackend final : public Backend {
 public:
  RamBackend(uint8_t* mem, uint64_t size) : mem_(mem), size_(size) {}
  ~RamBackend() override { munmap(mem_, size_); }

  uint64_t size_bytes() const override { return size_; }
  // The lock makes overlapping requests of different connections (and a test reading what the
  // target holds) well-defined C++, not a data race; the content of overlapping concurrent writes
  // is still whichever came last, as on a disk.
  int Read(uint64_t offset, uint8_t* dst, size_t len) override {
    std::shared_lock<std::shared_mutex> lock(mu_);
    std::memcpy(dst, mem_ + offset, len);
    return 0;
  }
  int Write(uint64_t offset, const uint8_t* src, size_t len) override {
    std::unique_lock<std::shared_mutex> lock(mu_);
    std::memcpy(mem_ + offset, src, len);
    return 0;
  }
  int WriteZeroes(uint64_t offset, uint64_t len, bool deallocate) override {
    std::unique_lock<std::shared_mutex> lock(mu_);
    uint64_t begin = offset, end = offset + len;
    if (deallocate) {
      // Whole pages go back to the kernel (they read as zeroes again); edges are cleared.
      const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
      const uint64_t pbegin = (begin + page - 1) / page * page, pend = end / page * page;
      if (pbegin < pend && madvise(mem_ + pbegin, pend - pbegin, MADV_DONTNEED) == 0) {
        std::memset(mem_ + begin, 0, pbegin - begin);
        std::memset(mem_ + pend, 0, end - pend);
        return 0;
      }
    }
    std::memset(mem_ + begin, 0, end - begin);
    return 0;
  }
  int Flush() override { return 0; }

 private:
  uint8_t* mem_;
  uint64_t size_;
  std::shared_mutex mu_;
};

class FileBackend final : public Backend {
 public:
  FileBackend(UniqueFd fd, uint64_t size, bool regular)
      : fd_(std::move(fd)), size_(size), regular_(regular) {}

  uint64_t size_bytes() const override { return size_; }
  int Read(uint64_t offset, uint8_t* dst, size_t len) override {
    while (len > 0) {
      const ssize_t n = pread(fd_.get(), dst, len, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -errno;
      if (n == 0) {  // beyond the end of a file that shrank under us: zeroes
        std::memset(dst, 0, len);
        return 0;
      }
      dst += n;
      offset += static_cast<uint64_t>(n);
      len -= static_cast<size_t>(n);
    }
    return 0;
  }
  int Write(uint64_t offset, const uint8_t* src, size_t len) override {
    while (len > 0) {
      const ssize_t n = pwrite(fd_.get(), src, len, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -errno;
      if (n == 0) return -EIO;
      src += n;
      offset += static_cast<uint64_t>(n);
      len -= static_cast<size_t>(n);
    }
    return 0;
  }
  int WriteZeroes(uint64_t offset, uint64_t len, bool deallocate) override {
    if (regular_) {
      const int mode = deallocate ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
                                  : (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
      if (fallocate(fd_.get(), mode, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0) {
        return 0;
      }
    }
    static const std::vector<uint8_t> zeroes(1 << 20);
    while (len > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(len, zeroes.size()));
      if (int rc = Write(offset, zeroes.data(), n); rc < 0) return rc;
      offset += n;
      len -= n;
    }
    return 0;
  }
  int Flush() override { return fdatasync(fd_.get()) == 0 ? 0 : -errno; }

 private:
  UniqueFd fd_;
  uint64_t size_;
  bool regular_;
};

class NullBackend final : public Backend {
 public:
  explicit NullBackend(uint64_t size) : size_(size) {}
  uint64_t size_bytes() const override { return size_; }
  int Read(uint64_t, uint8_t* dst, size_t len) override {
    std::memset(dst, 0, len);
    return 0;
  }
  int Write(uint64_t, const uint8_t*, size_t) override { return 0; }
  int WriteZeroes(uint64_t, uint64_t, bool) override { return 0; }
  int Flush() override { return 0; }

 private:
  uint64_t size_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> MakeRamBackend(uint64_t size) {
  if (size == 0) return absl::InvalidArgumentError("RAM namespace size is 0");
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    return ErrnoToStatus(errno, absl::StrCat("mmap ", size, " bytes for a RAM namespace"));
  }
  return std::make_unique<RamBackend>(static_cast<uint8_t*>(mem), size);
}

absl::StatusOr<std::unique_ptr<Backend>> MakeFileBackend(const std::string& path, uint64_t size) {
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", path));
  const bool regular = S_ISREG(st.st_mode);
  uint64_t current = static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode)) {
    if (ioctl(fd.get(), BLKGETSIZE64, &current) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("BLKGETSIZE64 ", path));
    }
  } else if (!regular) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is neither a file nor a block device"));
  }
  if (size == 0) size = current;
  if (size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is empty: give the namespace a size (size=...)"));
  }
  if (size > current) {
    if (!regular) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " has ", current, " bytes, fewer than the ", size, " configured"));
    }
    if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("extend ", path));
    }
  }
  return std::make_unique<FileBackend>(std::move(fd), size, regular);
}

std::unique_ptr<Backend> MakeNullBackend(uint64_t size) {
  return std::make_unique<NullBackend>(size);
}

}  // namespace nvmf_ublk::target
