#include "multipath/namespace_head.h"

#include <cerrno>
#include <deque>
#include <functional>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/spec.h"

namespace nvmf_ublk::multipath {
namespace {

// A path whose commands complete when the test says so, with the result it chooses.
class FakePath : public Path {
 public:
  explicit FakePath(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  uint32_t nsid() const override { return 7; }
  Usability usability(uint16_t) const override { return usability_; }
  void Submit(uint16_t, io::IoRequest* req) override { pending.push_back(req); }
  void After(uint16_t, int64_t delay_ns, std::function<void()> fn) override {
    delays.push_back(delay_ns);
    fn();
  }
  int64_t RetryDelayNs(uint8_t crd) const override { return crd * crdt_unit_ns; }

  // Completes the oldest pending command.
  void Complete(io::IoResult r) {
    io::IoRequest* req = pending.front();
    pending.pop_front();
    req->callback->OnIoDone(req, r);
  }

  Usability usability_ = Usability::kLive;
  int64_t crdt_unit_ns = 100'000'000;  // what CRDTn reports, per n
  std::deque<io::IoRequest*> pending;
  std::vector<int64_t> delays;

 private:
  std::string name_;
};

io::IoResult Nvme(uint8_t sct, uint8_t sc, bool dnr = false, uint8_t crd = 0) {
  io::IoResult r;
  r.status = nvme::MakeStatus(sct, sc, dnr, crd);
  return r;
}

struct Harness {
  std::vector<std::unique_ptr<FakePath>> fakes;
  std::unique_ptr<NamespaceHead> head;
  explicit Harness(int paths, uint32_t lba = 512) {
    std::vector<Path*> raw;
    for (int i = 0; i < paths; ++i) {
      fakes.push_back(std::make_unique<FakePath>("p" + std::to_string(i)));
      raw.push_back(fakes.back().get());
    }
    head = std::make_unique<NamespaceHead>("head", raw, lba, /*queues=*/2, /*depth=*/4);
  }
};

// Records each BlockIo's result instead of committing it to the kernel.
class HeadTest : public ::testing::Test, public ublk::BlockIoSink {
 protected:
  void OnBlockIoComplete(ublk::BlockIo* io, int result) override { results[io] = result; }
  ublk::BlockIo Io(ublk::BlockIo::Op op, uint64_t off, uint32_t len, uint16_t tag = 0) {
    ublk::BlockIo io;
    io.op = op;
    io.offset_bytes = off;
    io.len_bytes = len;
    io.tag = tag;
    io.queue = 1;
    io.buffer = buf;
    io.set_sink(this);
    return io;
  }
  std::map<const ublk::BlockIo*, int> results;
  uint8_t buf[8192];
};

TEST_F(HeadTest, TranslatesEachOperation) {
  Harness h(1, 512);
  FakePath& p = *h.fakes[0];
  auto rd = Io(ublk::BlockIo::kRead, 4096, 8192, 0);
  h.head->Submit(&rd);
  ASSERT_EQ(p.pending.size(), 1u);
  EXPECT_EQ(p.pending[0]->sqe.opcode, static_cast<uint8_t>(nvme::IoOpcode::kRead));
  EXPECT_EQ(p.pending[0]->sqe.nsid.get(), 7u);
  EXPECT_EQ(p.pending[0]->sqe.cdw10.get(), 8u);            // SLBA 4096/512
  EXPECT_EQ(p.pending[0]->sqe.cdw12.get() & 0xFFFF, 15u);  // 16 blocks, 0-based
  EXPECT_EQ(p.pending[0]->len, 8192u);
  p.Complete({});
  EXPECT_EQ(results[&rd], 8192);

  auto wr = Io(ublk::BlockIo::kWrite, 0, 512, 1);
  wr.fua = true;
  h.head->Submit(&wr);
  EXPECT_EQ(p.pending[0]->sqe.cdw12.get() & nvme::kRwFua, nvme::kRwFua);
  p.Complete({});
  EXPECT_EQ(results[&wr], 512);

  auto fl = Io(ublk::BlockIo::kFlush, 0, 0, 2);
  h.head->Submit(&fl);
  EXPECT_EQ(p.pending[0]->sqe.opcode, static_cast<uint8_t>(nvme::IoOpcode::kFlush));
  p.Complete({});
  EXPECT_EQ(results[&fl], 0);

  auto dc = Io(ublk::BlockIo::kDiscard, 1 << 20, 1 << 20, 3);
  h.head->Submit(&dc);
  io::IoRequest* d = p.pending[0];
  EXPECT_EQ(d->sqe.opcode, static_cast<uint8_t>(nvme::IoOpcode::kDatasetManagement));
  EXPECT_EQ(d->len, 16u);
  const auto* range = static_cast<const nvme::DsmRange*>(d->data);
  EXPECT_EQ(range->slba.get(), 2048u);
  EXPECT_EQ(range->nlb.get(), 2048u);
  EXPECT_EQ(d->sqe.cdw11.get() & nvme::kDsmDeallocate, nvme::kDsmDeallocate);
  p.Complete({});
  EXPECT_EQ(results[&dc], 0);

  auto wz = Io(ublk::BlockIo::kWriteZeroes, 0, 4096, 0);
  wz.nounmap = true;
  h.head->Submit(&wz);
  EXPECT_EQ(p.pending[0]->sqe.cdw12.get() & nvme::kWriteZeroesDeac, 0u);
  p.Complete({});
  EXPECT_EQ(results[&wz], 0);
}

TEST_F(HeadTest, TransportFailureIsReissuedOnceAndNeverDuplicated) {
  Harness h(1);
  FakePath& p = *h.fakes[0];
  auto rd = Io(ublk::BlockIo::kRead, 0, 512);
  h.head->Submit(&rd);
  p.usability_ = Path::Usability::kConnecting;  // the controller is reconnecting
  p.Complete(io::IoResult{-ECONNABORTED});
  ASSERT_EQ(p.pending.size(), 1u);  // re-issued once, parked on the reconnecting path
  EXPECT_TRUE(results.empty());
  p.usability_ = Path::Usability::kLive;
  p.Complete({});
  EXPECT_EQ(results[&rd], 512);
  EXPECT_EQ(h.head->stats().failovers.load(), 1u);
}

// A stuck device teardown abandons the head: a request in flight still completes (here failed by
// its controller going away, which would otherwise re-issue it), and new requests fail at once;
// neither reaches a path again.
TEST_F(HeadTest, AbandonedHeadNeverTouchesAPathAgain) {
  Harness h(1);
  FakePath& p = *h.fakes[0];
  auto rd = Io(ublk::BlockIo::kRead, 0, 512, /*tag=*/0);
  h.head->Submit(&rd);
  ASSERT_EQ(p.pending.size(), 1u);
  h.head->Abandon();
  p.Complete(io::IoResult{-ECONNABORTED});  // would be a failover to a live path
  EXPECT_TRUE(p.pending.empty());
  EXPECT_EQ(results[&rd], -EIO);
  auto wr = Io(ublk::BlockIo::kWrite, 512, 512, /*tag=*/1);
  h.head->Submit(&wr);
  EXPECT_TRUE(p.pending.empty());
  EXPECT_EQ(results[&wr], -EIO);
}

TEST_F(HeadTest, PathErrorFailsOverToTheOtherPath) {
  Harness h(2);
  auto rd = Io(ublk::BlockIo::kRead, 0, 512);
  h.head->Submit(&rd);
  FakePath* first = h.fakes[0]->pending.empty() ? h.fakes[1].get() : h.fakes[0].get();
  FakePath* second = first == h.fakes[0].get() ? h.fakes[1].get() : h.fakes[0].get();
  first->usability_ = Path::Usability::kDown;
  first->Complete(Nvme(nvme::kSctPath, nvme::kScAnaInaccessible));
  ASSERT_EQ(second->pending.size(), 1u);
  second->Complete({});
  EXPECT_EQ(results[&rd], 512);
}

TEST_F(HeadTest, NoUsablePathFailsWithEio) {
  Harness h(1);
  FakePath& p = *h.fakes[0];
  auto rd = Io(ublk::BlockIo::kRead, 0, 512);
  h.head->Submit(&rd);
  p.usability_ = Path::Usability::kDown;
  p.Complete(io::IoResult{-ENOTCONN});
  EXPECT_TRUE(p.pending.empty());
  EXPECT_EQ(results[&rd], -EIO);
  auto again = Io(ublk::BlockIo::kRead, 0, 512, 1);
  h.head->Submit(&again);
  EXPECT_EQ(results[&again], -EIO);
}

// CRDT is 16 bits of 100 ms: a target may ask for 6553.5 s. One retry waits 10 s at most.
TEST_F(HeadTest, CommandRetryDelayIsClamped) {
  Harness h(1);
  FakePath& p = *h.fakes[0];
  p.crdt_unit_ns = 65535LL * 100'000'000;
  auto wr = Io(ublk::BlockIo::kWrite, 0, 512);
  h.head->Submit(&wr);
  p.Complete(Nvme(nvme::kSctGeneric, nvme::kScNamespaceNotReady, false, 1));
  ASSERT_EQ(p.delays.size(), 1u);
  EXPECT_EQ(p.delays[0], 10'000'000'000);
  p.Complete({});
  EXPECT_EQ(results[&wr], 512);
}

TEST_F(HeadTest, DnrErrorsFailWithTheirErrnoAndRetryLaterWaits) {
  Harness h(1);
  FakePath& p = *h.fakes[0];
  auto rd = Io(ublk::BlockIo::kRead, 0, 512);
  h.head->Submit(&rd);
  p.Complete(Nvme(nvme::kSctGeneric, nvme::kScLbaOutOfRange, true));
  EXPECT_EQ(results[&rd], -ERANGE);

  auto wr = Io(ublk::BlockIo::kWrite, 0, 512, 1);
  h.head->Submit(&wr);
  p.Complete(Nvme(nvme::kSctGeneric, nvme::kScNamespaceNotReady, false, 2));
  ASSERT_EQ(p.delays.size(), 1u);
  EXPECT_EQ(p.delays[0], 200'000'000);  // CRDT2 in this fake
  ASSERT_EQ(p.pending.size(), 1u);
  p.Complete({});
  EXPECT_EQ(results[&wr], 512);

  auto wr2 = Io(ublk::BlockIo::kWrite, 0, 512, 2);
  h.head->Submit(&wr2);
  for (int i = 0; i < 6; ++i) p.Complete(Nvme(nvme::kSctGeneric, nvme::kScAbortRequested));
  EXPECT_TRUE(p.pending.empty());
  EXPECT_EQ(results[&wr2], -EIO);  // bounded retries
}

TEST(DeviceParamsFor, FromIdentify) {
  nvme::ControllerInfo c;
  c.oncs = (1u << 2) | (1u << 3);
  c.vwc = 1;
  nvme::NamespaceInfo ns;
  ns.nsze = 1u << 20;
  ns.lba_bytes = 4096;
  ublk::DeviceParams p = DeviceParamsFor(c, ns, /*mdts=*/128 * 1024, /*max_io=*/512 * 1024);
  EXPECT_EQ(p.size_bytes, 4096ull << 20);
  EXPECT_EQ(p.logical_block_size, 4096u);
  EXPECT_EQ(p.max_transfer_bytes, 128u * 1024);
  EXPECT_TRUE(p.volatile_cache);
  EXPECT_TRUE(p.fua);
  EXPECT_GT(p.max_discard_bytes, 0u);
  EXPECT_EQ(p.max_write_zeroes_bytes, 65536ull * 4096);
  c.oncs = 0;
  c.vwc = 0;
  p = DeviceParamsFor(c, ns, 0, 512 * 1024);
  EXPECT_EQ(p.max_transfer_bytes, 512u * 1024);
  EXPECT_FALSE(p.volatile_cache);
  EXPECT_EQ(p.max_discard_bytes, 0u);
  EXPECT_EQ(p.max_write_zeroes_bytes, 0u);
}

}  // namespace
}  // namespace nvmf_ublk::multipath
