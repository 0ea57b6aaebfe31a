// The ublk layer against the real ublk_drv (run in the QEMU guest: tests/guest, ctest guest_ublk).
// Skips where /dev/ublk-control is missing or not usable.
//
// Devices run on 2 reactors x 2 queues with a RamBackend; I/O goes through /dev/ublkbN with
// O_DIRECT so that every request reaches the backend.
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "base/testing/status_matchers.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/reactor.h"
#include "ublk/control.h"
#include "ublk/device.h"
#include "ublk/testing/ram_backend.h"

namespace nvmf_ublk::ublk {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;
using testing::RamBackend;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string ReadSysfs(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// Page-aligned buffer for O_DIRECT.
struct AlignedBuf {
  explicit AlignedBuf(size_t n) : size(n) {
    void* p = nullptr;
    NCHECK(posix_memalign(&p, 4096, n) == 0);
    data = static_cast<uint8_t*>(p);
  }
  ~AlignedBuf() { free(data); }
  uint8_t* data;
  size_t size;
};

void Fill(uint8_t* p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; ++i)
    p[i] = static_cast<uint8_t>((i * 131 + seed * 7 + (i >> 9)) ^ seed);
}

class UblkGuestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Exists(kControlPath)) GTEST_SKIP() << kControlPath << " missing: needs ublk_drv (guest)";
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    auto control = ControlDevice::Open();
    ASSERT_THAT(control, IsOk());
    control_ = std::move(*control);
    for (int i = 0; i < 2; ++i) {
      reactors_.push_back(std::make_unique<io::Reactor>(
          io::Reactor::Options{.entries = 256, .name = "ublk-r" + std::to_string(i)}));
      ASSERT_THAT(reactors_.back()->StartThread(), IsOk());
      reactor_ptrs_.push_back(reactors_.back().get());
    }
  }
  void TearDown() override {
    for (auto& r : reactors_) r->Stop();
    for (auto& r : reactors_) r->Join();
  }

  std::unique_ptr<RamBackend> Backend(uint64_t size, bool async = false) {
    RamBackend::Options o;
    o.size_bytes = size;
    o.async = async;
    o.reactors = reactor_ptrs_;
    auto b = RamBackend::Create(o);
    NCHECK(b.ok()) << b.status();
    return std::move(*b);
  }

  static DeviceParams Params(uint64_t size, uint32_t lbs) {
    DeviceParams p;
    p.size_bytes = size;
    p.logical_block_size = lbs;
    p.physical_block_size = 4096;
    p.max_transfer_bytes = 256 * 1024;
    p.volatile_cache = true;
    p.fua = true;
    p.max_discard_bytes = 32 << 20;
    p.max_write_zeroes_bytes = 16 << 20;
    return p;
  }

  static DeviceOptions Options(int32_t dev_id = -1) {
    DeviceOptions o;
    o.dev_id = dev_id;
    o.nr_queues = 2;
    o.queue_depth = 32;
    o.max_io_bytes = 512 * 1024;
    o.start_timeout_ns = 60'000'000'000;
    return o;
  }

  absl::StatusOr<std::unique_ptr<UblkDevice>> Create(const DeviceParams& p, BlockBackend* backend,
                                                     int32_t dev_id = -1) {
    return UblkDevice::Create(control_.get(), p, Options(dev_id), reactor_ptrs_, backend);
  }

  std::unique_ptr<ControlDevice> control_;
  std::vector<std::unique_ptr<io::Reactor>> reactors_;
  std::vector<io::Reactor*> reactor_ptrs_;
};

TEST_F(UblkGuestTest, KernelFeaturesAreProbed) {
  // 6.12: GET_FEATURES exists, so does the ioctl encoding and recovery.
  EXPECT_TRUE(control_->features_probed());
  EXPECT_TRUE(control_->ioctl_encoding());
  const uint64_t want = uapi::UBLK_F_USER_RECOVERY | uapi::UBLK_F_USER_RECOVERY_REISSUE |
                        uapi::UBLK_F_CMD_IOCTL_ENCODE;
  EXPECT_EQ(control_->features() & want, want) << FeatureNames(control_->features());
}

class GeometryTest : public UblkGuestTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(GeometryTest, DeviceHasExactlyTheGivenGeometryAndGoesAwayOnStop) {
  const uint32_t lbs = GetParam();
  const uint64_t size = (64ull << 20) + 3 * 4096;  // not a round number
  auto backend = Backend(size);
  ASSERT_OK_AND_ASSIGN(auto dev, Create(Params(size, lbs), backend.get()));
  const std::string bdev = dev->block_path();
  const std::string name = bdev.substr(5);
  EXPECT_TRUE(dev->recoverable());
  EXPECT_EQ(dev->nr_queues(), 2);
  EXPECT_EQ(backend->counters().queue_starts.load(), 2u);

  UniqueFd fd(open(bdev.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << bdev << ": " << strerror(errno);
  uint64_t bytes = 0;
  int ssz = 0;
  unsigned pbsz = 0;
  ASSERT_EQ(ioctl(fd.get(), BLKGETSIZE64, &bytes), 0);
  ASSERT_EQ(ioctl(fd.get(), BLKSSZGET, &ssz), 0);
  ASSERT_EQ(ioctl(fd.get(), BLKPBSZGET, &pbsz), 0);
  EXPECT_EQ(bytes, size);
  EXPECT_EQ(static_cast<uint32_t>(ssz), lbs);
  EXPECT_EQ(pbsz, 4096u);
  fd.reset();
  const std::string q = "/sys/block/" + name + "/queue/";
  EXPECT_EQ(ReadSysfs("/sys/block/" + name + "/size"), std::to_string(size / 512));
  EXPECT_EQ(ReadSysfs(q + "max_hw_sectors_kb"), "256");
  EXPECT_EQ(ReadSysfs(q + "write_cache"), "write back");
  EXPECT_EQ(ReadSysfs(q + "fua"), "1");
  EXPECT_EQ(ReadSysfs(q + "discard_max_hw_bytes"), std::to_string(32 << 20));
  EXPECT_EQ(ReadSysfs(q + "write_zeroes_max_bytes"), std::to_string(16 << 20));

  const uint32_t id = dev->dev_id();
  EXPECT_THAT(dev->Stop(), IsOk());
  EXPECT_FALSE(Exists(bdev));
  EXPECT_FALSE(Exists("/dev/ublkc" + std::to_string(id)));
  EXPECT_THAT(control_->GetDeviceInfo(id).status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(backend->counters().queue_stops.load(), 2u);
  EXPECT_EQ(dev->queue(0).state(), UblkQueue::State::kStopped);
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, GeometryTest, ::testing::Values(512u, 4096u));

// Writes and reads through the block device from a thread pinned to `cpu`; blk-mq maps each CPU
// to one hardware queue, so CPU 0 and CPU 1 exercise queue 0 and queue 1.
void IoOnCpu(const std::string& bdev, int cpu, uint64_t base, uint32_t seed, std::string* error) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  UniqueFd fd(open(bdev.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
  if (!fd.valid()) {
    *error = "open: " + std::string(strerror(errno));
    return;
  }
  AlignedBuf w(256 * 1024), r(256 * 1024);
  for (int i = 0; i < 16; ++i) {
    const size_t len = 4096u << (i % 7);  // 4 KiB .. 256 KiB
    const uint64_t off = base + static_cast<uint64_t>(i) * (256 * 1024);
    Fill(w.data, len, seed + i);
    if (pwrite(fd.get(), w.data, len, off) != static_cast<ssize_t>(len)) {
      *error = "pwrite: " + std::string(strerror(errno));
      return;
    }
    std::memset(r.data, 0, len);
    if (pread(fd.get(), r.data, len, off) != static_cast<ssize_t>(len)) {
      *error = "pread: " + std::string(strerror(errno));
      return;
    }
    if (std::memcmp(w.data, r.data, len) != 0) {
      *error = "data mismatch at " + std::to_string(off);
      return;
    }
  }
}

TEST_F(UblkGuestTest, DataRoundTripsOnBothQueues) {
  const uint64_t size = 32 << 20;
  auto backend = Backend(size);
  ASSERT_OK_AND_ASSIGN(auto dev, Create(Params(size, 512), backend.get()));
  std::string e0, e1;
  std::thread t0(IoOnCpu, dev->block_path(), 0, 0, 1, &e0);
  std::thread t1(IoOnCpu, dev->block_path(), 1, 8 << 20, 2, &e1);
  t0.join();
  t1.join();
  EXPECT_EQ(e0, "");
  EXPECT_EQ(e1, "");
  EXPECT_GT(dev->queue(0).ios_completed(), 0u);
  EXPECT_GT(dev->queue(1).ios_completed(), 0u);
  // What the device holds is what the backend holds.
  AlignedBuf expect(4096);
  Fill(expect.data, 4096, 2);
  EXPECT_EQ(std::memcmp(backend->data() + (8 << 20), expect.data, 4096), 0);
  EXPECT_THAT(dev->Stop(), IsOk());
}

TEST_F(UblkGuestTest, FlushFuaDiscardAndWriteZeroesReachTheBackend) {
  const uint64_t size = 32 << 20;
  auto backend = Backend(size);
  ASSERT_OK_AND_ASSIGN(auto dev, Create(Params(size, 4096), backend.get()));
  UniqueFd fd(open(dev->block_path().c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  AlignedBuf buf(1 << 20);
  Fill(buf.data, buf.size, 9);
  ASSERT_EQ(pwrite(fd.get(), buf.data, buf.size, 0), static_cast<ssize_t>(buf.size));
  ASSERT_EQ(pwrite(fd.get(), buf.data, buf.size, 4 << 20), static_cast<ssize_t>(buf.size));

  const uint64_t flushes = backend->counters().flushes.load();
  ASSERT_EQ(fsync(fd.get()), 0);
  EXPECT_GT(backend->counters().flushes.load(), flushes);

  iovec iov{buf.data, 4096};
  ASSERT_EQ(pwritev2(fd.get(), &iov, 1, 8 << 20, RWF_DSYNC), 4096);
  EXPECT_GT(backend->counters().fua_writes.load(), 0u);

  uint64_t range[2] = {0, 1 << 20};
  ASSERT_EQ(ioctl(fd.get(), BLKDISCARD, range), 0) << strerror(errno);
  EXPECT_GT(backend->counters().discards.load(), 0u);
  AlignedBuf zero(1 << 20);
  std::memset(zero.data, 0, zero.size);
  EXPECT_EQ(std::memcmp(backend->data(), zero.data, 1 << 20), 0);

  range[0] = 4 << 20;
  ASSERT_EQ(ioctl(fd.get(), BLKZEROOUT, range), 0) << strerror(errno);
  EXPECT_GT(backend->counters().write_zeroes.load(), 0u);
  EXPECT_GT(backend->counters().nounmap.load(), 0u);  // BLKZEROOUT must not deallocate
  ASSERT_EQ(pread(fd.get(), buf.data, 1 << 20, 4 << 20), 1 << 20);
  EXPECT_EQ(std::memcmp(buf.data, zero.data, 1 << 20), 0);
  fd.reset();
  EXPECT_THAT(dev->Stop(), IsOk());
}

TEST_F(UblkGuestTest, BackendErrorsReachTheCaller) {
  const uint64_t size = 16 << 20;
  auto backend = Backend(size);
  ASSERT_OK_AND_ASSIGN(auto dev, Create(Params(size, 512), backend.get()));
  UniqueFd fd(open(dev->block_path().c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  AlignedBuf buf(4096);
  backend->InjectError(1 << 20, 4096, -EIO);
  EXPECT_EQ(pread(fd.get(), buf.data, 4096, 1 << 20), -1);
  EXPECT_EQ(errno, EIO);
  backend->InjectError(1 << 20, 4096, -ENOSPC);
  EXPECT_EQ(pwrite(fd.get(), buf.data, 4096, 1 << 20), -1);
  EXPECT_EQ(errno, ENOSPC);
  backend->InjectError(0, 0, 0);
  EXPECT_EQ(pread(fd.get(), buf.data, 4096, 1 << 20), 4096);
  fd.reset();
  EXPECT_THAT(dev->Stop(), IsOk());
}

TEST_F(UblkGuestTest, TwoDevicesShareTheReactorsOneWithAnAsyncBackend) {
  const uint64_t size = 16 << 20;
  auto sync_backend = Backend(size);
  auto async_backend = Backend(size, /*async=*/true);
  ASSERT_OK_AND_ASSIGN(auto a, Create(Params(size, 512), sync_backend.get()));
  ASSERT_OK_AND_ASSIGN(auto b, Create(Params(size, 4096), async_backend.get()));
  EXPECT_NE(a->dev_id(), b->dev_id());
  std::string ea, eb, ec;
  std::thread ta(IoOnCpu, a->block_path(), 0, 0, 3, &ea);
  std::thread tb(IoOnCpu, b->block_path(), 1, 0, 4, &eb);
  std::thread tc(IoOnCpu, b->block_path(), 0, 8 << 20, 5, &ec);
  ta.join();
  tb.join();
  tc.join();
  EXPECT_EQ(ea, "");
  EXPECT_EQ(eb, "");
  EXPECT_EQ(ec, "");
  EXPECT_GT(async_backend->counters().writes.load(), 0u);
  EXPECT_THAT(b->Stop(), IsOk());
  EXPECT_THAT(a->Stop(), IsOk());
}

TEST_F(UblkGuestTest, RequestedDeviceId) {
  const uint64_t size = 8 << 20;
  auto backend = Backend(size);
  ASSERT_OK_AND_ASSIGN(auto dev, Create(Params(size, 512), backend.get(), /*dev_id=*/7));
  EXPECT_EQ(dev->dev_id(), 7u);
  EXPECT_EQ(dev->block_path(), "/dev/ublkb7");
  EXPECT_TRUE(Exists("/dev/ublkb7"));
  auto other = Backend(size);
  EXPECT_THAT(Create(Params(size, 512), other.get(), 7).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(dev->Stop(), IsOk());
  EXPECT_FALSE(Exists("/dev/ublkb7"));
}

TEST_F(UblkGuestTest, StartDevWithoutQueuesIsCancelledAtTheDeadline) {
  // START_DEV blocks until every tag is fetched; nobody fetches here. The control transport must
  // cancel it at the deadline, and the device must still be deletable.
  uapi::ublksrv_ctrl_dev_info req{};
  req.nr_hw_queues = 1;
  req.queue_depth = 4;
  req.max_io_buf_bytes = 64 * 1024;
  req.dev_id = static_cast<uint32_t>(-1);
  ASSERT_OK_AND_ASSIGN(auto info, control_->AddDevice(req));
  DeviceParams p = Params(8 << 20, 512);
  p.max_transfer_bytes = 64 * 1024;
  ASSERT_OK_AND_ASSIGN(auto uparams, BuildParams(p, info.max_io_buf_bytes));
  ASSERT_THAT(control_->SetParams(info.dev_id, uparams), IsOk());
  ASSERT_OK_AND_ASSIGN(auto back, control_->GetParams(info.dev_id));
  EXPECT_EQ(back.basic.dev_sectors, (8u << 20) / 512);
  EXPECT_TRUE(back.types & uapi::UBLK_PARAM_TYPE_DEVT);  // filled in by the kernel
  const int64_t t0 = MonotonicNanos();
  EXPECT_THAT(control_->StartDevice(info.dev_id, getpid(),
                                    {.deadline_ns = MonotonicNanos() + 1'000'000'000}),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("START_DEV")));
  EXPECT_LT(MonotonicNanos() - t0, 10'000'000'000);
  ASSERT_OK_AND_ASSIGN(auto now, control_->GetDeviceInfo(info.dev_id));
  EXPECT_EQ(now.state, uapi::UBLK_S_DEV_DEAD);
  EXPECT_THAT(control_->DeleteDevice(info.dev_id), IsOk());
}

TEST_F(UblkGuestTest, CreateFailsCleanlyWhenAQueueNeverStarts) {
  // Queue 1's reactor never runs: queue 0 fetches, START_DEV waits for queue 1 until the deadline.
  // Create must then stop queue 0, release every mapping and delete the kernel device.
  io::Reactor stuck({64, "stuck"});  // never initialised: posted work just waits
  std::vector<io::Reactor*> reactors = {reactor_ptrs_[0], &stuck};
  const uint64_t size = 8 << 20;
  auto backend = Backend(size);
  DeviceOptions o = Options();
  o.start_timeout_ns = 1'000'000'000;
  o.stop_timeout_ns = 20'000'000'000;
  const int64_t t0 = MonotonicNanos();
  EXPECT_THAT(
      UblkDevice::Create(control_.get(), Params(size, 512), o, reactors, backend.get()).status(),
      StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("START_DEV")));
  EXPECT_LT(MonotonicNanos() - t0, 15'000'000'000);  // DEL_DEV did not wait for the stuck queue
  EXPECT_EQ(backend->counters().queue_starts.load(), 1u);
  EXPECT_EQ(backend->counters().queue_stops.load(), 1u);
  EXPECT_FALSE(Exists("/dev/ublkc0"));
  EXPECT_FALSE(Exists("/dev/ublkb0"));
}

TEST_F(UblkGuestTest, RecoverRefusesALiveDevice) {
  const uint64_t size = 8 << 20;
  auto backend = Backend(size);
  ASSERT_OK_AND_ASSIGN(auto dev, Create(Params(size, 512), backend.get()));
  DeviceOptions o = Options();
  o.recover_wait_ns = 500'000'000;
  auto other = Backend(size);
  EXPECT_THAT(
      UblkDevice::Recover(control_.get(), dev->dev_id(), o, reactor_ptrs_, other.get()).status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("still alive")));
  // The live device is untouched.
  EXPECT_TRUE(Exists(dev->block_path()));
  EXPECT_THAT(dev->Stop(), IsOk());
}

}  // namespace
}  // namespace nvmf_ublk::ublk
