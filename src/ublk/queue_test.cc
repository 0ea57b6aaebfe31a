#include "ublk/queue.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "ublk/testing/ram_backend.h"

namespace nvmf_ublk::ublk {
namespace {

using ::nvmf_ublk::testing::IsOk;

constexpr uint32_t kMaxIo = 256 * 1024;

uapi::ublksrv_io_desc Desc(uint32_t op_flags, uint64_t start_sector, uint32_t nr_sectors) {
  uapi::ublksrv_io_desc d{};
  d.op_flags = op_flags;
  d.start_sector = start_sector;
  d.nr_sectors = nr_sectors;
  d.addr = 0xdead000;
  return d;
}

TEST(DecodeIoDesc, ReadAndWrite) {
  char buf[16];
  BlockIo io;
  ASSERT_EQ(DecodeIoDesc(Desc(uapi::UBLK_IO_OP_READ, 8, 16), kMaxIo, buf, &io), 0);
  EXPECT_EQ(io.op, BlockIo::kRead);
  EXPECT_EQ(io.offset_bytes, 4096u);
  EXPECT_EQ(io.len_bytes, 8192u);
  EXPECT_EQ(io.buffer, buf);
  EXPECT_FALSE(io.fua);

  ASSERT_EQ(
      DecodeIoDesc(Desc(uapi::UBLK_IO_OP_WRITE | uapi::UBLK_IO_F_FUA, 1, 1), kMaxIo, buf, &io), 0);
  EXPECT_EQ(io.op, BlockIo::kWrite);
  EXPECT_TRUE(io.fua);
  EXPECT_EQ(io.offset_bytes, 512u);
  EXPECT_EQ(io.len_bytes, 512u);

  // Plain write after a FUA one on the same tag: flags are reset.
  ASSERT_EQ(DecodeIoDesc(Desc(uapi::UBLK_IO_OP_WRITE, 0, 8), kMaxIo, buf, &io), 0);
  EXPECT_FALSE(io.fua);
}

TEST(DecodeIoDesc, FlushDiscardWriteZeroes) {
  char buf[16];
  BlockIo io;
  io.backend_data = &io;
  ASSERT_EQ(DecodeIoDesc(Desc(uapi::UBLK_IO_OP_FLUSH, 0, 0), kMaxIo, buf, &io), 0);
  EXPECT_EQ(io.op, BlockIo::kFlush);
  EXPECT_EQ(io.len_bytes, 0u);
  EXPECT_EQ(io.buffer, nullptr);
  EXPECT_EQ(io.backend_data, &io);  // the backend's, never touched

  // Discards and write-zeroes may exceed the tag buffer: no data moves.
  ASSERT_EQ(DecodeIoDesc(Desc(uapi::UBLK_IO_OP_DISCARD, 2048, 1u << 21), kMaxIo, buf, &io), 0);
  EXPECT_EQ(io.op, BlockIo::kDiscard);
  EXPECT_EQ(io.offset_bytes, 1u << 20);
  EXPECT_EQ(io.len_bytes, 1u << 30);
  EXPECT_EQ(io.buffer, nullptr);

  ASSERT_EQ(DecodeIoDesc(Desc(uapi::UBLK_IO_OP_WRITE_ZEROES | uapi::UBLK_IO_F_NOUNMAP, 8, 8),
                         kMaxIo, buf, &io),
            0);
  EXPECT_EQ(io.op, BlockIo::kWriteZeroes);
  EXPECT_TRUE(io.nounmap);
}

TEST(DecodeIoDesc, RefusesWhatWeDoNotServe) {
  char buf[16];
  BlockIo io;
  EXPECT_EQ(DecodeIoDesc(Desc(uapi::UBLK_IO_OP_ZONE_APPEND, 0, 8), kMaxIo, buf, &io), -EOPNOTSUPP);
  EXPECT_EQ(DecodeIoDesc(Desc(uapi::UBLK_IO_OP_WRITE_SAME, 0, 8), kMaxIo, buf, &io), -EOPNOTSUPP);
  EXPECT_EQ(DecodeIoDesc(Desc(uapi::UBLK_IO_OP_REPORT_ZONES, 0, 8), kMaxIo, buf, &io), -EOPNOTSUPP);
  // Larger than the tag buffer, or empty: cannot be a valid request.
  EXPECT_EQ(DecodeIoDesc(Desc(uapi::UBLK_IO_OP_READ, 0, kMaxIo / 512 + 1), kMaxIo, buf, &io), -EIO);
  EXPECT_EQ(DecodeIoDesc(Desc(uapi::UBLK_IO_OP_WRITE, 0, 0), kMaxIo, buf, &io), -EIO);
}

TEST(ToUblkResult, OnePlaceForResults) {
  BlockIo rd;
  rd.op = BlockIo::kRead;
  rd.len_bytes = 4096;
  EXPECT_EQ(ToUblkResult(rd, 4096), 4096);
  EXPECT_EQ(ToUblkResult(rd, 512), 512);    // short read: the kernel retries the rest
  EXPECT_EQ(ToUblkResult(rd, 0), -EIO);     // nothing read
  EXPECT_EQ(ToUblkResult(rd, 8192), 4096);  // never more than asked
  EXPECT_EQ(ToUblkResult(rd, -ENOSPC), -ENOSPC);
  EXPECT_EQ(ToUblkResult(rd, -100000), -EIO);  // not an errno

  BlockIo wr = rd;
  wr.op = BlockIo::kWrite;
  EXPECT_EQ(ToUblkResult(wr, 0), -EIO);  // a 0-byte write would be requeued forever

  BlockIo fl;
  fl.op = BlockIo::kFlush;
  EXPECT_EQ(ToUblkResult(fl, 0), 0);
  EXPECT_EQ(ToUblkResult(fl, 123), 0);
  EXPECT_EQ(ToUblkResult(fl, -EIO), -EIO);
  BlockIo dz;
  dz.op = BlockIo::kDiscard;
  dz.len_bytes = 1 << 20;
  EXPECT_EQ(ToUblkResult(dz, 1 << 20), 0);
  EXPECT_EQ(ToUblkResult(dz, -EOPNOTSUPP), -EOPNOTSUPP);
}

// How a backend's own tests observe completions (no UblkQueue involved).
TEST(BlockIo, CompletionGoesToItsSink) {
  struct Recorder : BlockIoSink {
    void OnBlockIoComplete(BlockIo* io, int result) override { done.emplace_back(io, result); }
    std::vector<std::pair<BlockIo*, int>> done;
  } sink;
  BlockIo io;
  io.set_sink(&sink);
  io.Complete(-EIO);
  ASSERT_EQ(sink.done.size(), 1u);
  EXPECT_EQ(sink.done[0].first, &io);
  EXPECT_EQ(sink.done[0].second, -EIO);
  EXPECT_STREQ(ToString(BlockIo::kWriteZeroes), "write-zeroes");
}

// Without ublk on this host, a memfd stands in for /dev/ublkcN: it can be mmapped like the
// descriptor array, and refuses IORING_OP_URING_CMD. The queue must then report the failure, stop
// every tag, leave the reactor and tell the backend.
TEST(UblkQueue, KernelRefusingFetchStopsTheQueue) {
  const int fd = memfd_create("fake-ublkc", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 2 * uapi::UblkMaxCmdBufSize(sysconf(_SC_PAGESIZE))), 0);

  io::Reactor reactor({64, "ublk-test"});
  ASSERT_THAT(reactor.Init(), IsOk());
  testing::RamBackend::Options bo;
  bo.size_bytes = 1 << 20;
  ASSERT_OK_AND_ASSIGN(auto backend, testing::RamBackend::Create(bo));

  QueueConfig cfg;
  cfg.dev_id = 9;
  cfg.q_id = 1;
  cfg.depth = 100;  // more tags than the ring has SQEs
  cfg.max_io_bytes = kMaxIo;
  cfg.char_fd = fd;
  UblkQueue queue(&reactor, cfg, backend.get());
  ASSERT_THAT(queue.Init(), IsOk());
  bool stopped = false;
  queue.Start([&] { stopped = true; });
  EXPECT_EQ(queue.state(), UblkQueue::State::kRunning);
  EXPECT_EQ(backend->counters().queue_starts.load(), 1u);
  const int64_t deadline = MonotonicNanos() + 5'000'000'000;
  while (!stopped && MonotonicNanos() < deadline) reactor.RunOnce(100'000'000);
  EXPECT_TRUE(stopped);
  EXPECT_TRUE(queue.failed());
  EXPECT_EQ(queue.state(), UblkQueue::State::kStopped);
  EXPECT_EQ(backend->counters().queue_stops.load(), 1u);
  EXPECT_EQ(queue.ios_completed(), 0u);
  close(fd);
}

}  // namespace
}  // namespace nvmf_ublk::ublk
