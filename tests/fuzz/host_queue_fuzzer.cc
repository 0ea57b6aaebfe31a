// Fuzzes a live host queue (src/tcp/host_queue.h) with controller bytes at random fragmentation,
// interleaved with partial send acknowledgements, new submissions and the H2CTermReq hand-over, as
// the transport drives it. The queue is brought up first (ICResp, Connect) by the unit tests' fake
// controller, so every input starts at live I/O. Invariants checked (a trap otherwise):
//   - no command completes twice, or before it was submitted;
//   - after the teardown (FailOutstanding, then the socket taking what is left) every submitted
//     command has completed exactly once and none is outstanding.
// (That a success never comes early is the unit tests' job: host_queue_hostile_test.cc.)
// Input layout (FuzzedDataProvider): queue options, then a sequence of operations.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "base/log.h"
#include "nvme/commands.h"
#include "tcp/host_queue.h"
#include "tcp/testing/fake_controller.h"

namespace {

using namespace nvmf_ublk;

#define FUZZ_CHECK(cond) \
  if (!(cond)) __builtin_trap()

class Observer : public tcp::HostQueueObserver {
 public:
  void OnQueueLive(uint16_t) override {}
  void OnCommandDone(uint64_t cookie, const nvme::Cqe&, int) override {
    FUZZ_CHECK(submitted.count(cookie) == 1);
    FUZZ_CHECK(++done[cookie] == 1);
  }
  void OnQueueFailed(const absl::Status&) override { ++failures; }
  std::map<uint64_t, int> submitted;
  std::map<uint64_t, int> done;
  int failures = 0;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  nvmf_ublk::SetMinLogLevel(nvmf_ublk::LogLevel::kFatal);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  tcp::HostQueueOptions o;
  o.qid = 1;
  o.queue_size = in.ConsumeIntegralInRange<uint16_t>(2, 16);
  o.header_digest = in.ConsumeBool();
  o.data_digest = in.ConsumeBool();
  o.disable_sq_flow_control = in.ConsumeBool();
  o.in_capsule_data = in.PickValueInArray<uint32_t>({0, 512, 4096});
  o.maxr2t = in.ConsumeIntegralInRange<uint32_t>(1, 4);
  o.subnqn = "nqn.2026-01.io.fuzz:sub";
  o.hostnqn = "nqn.2026-01.io.fuzz:host";
  o.cntlid = 1;
  Observer obs;
  tcp::HostQueue q(o, &obs);
  tcp::testing::FakeController ctrl;
  ctrl.Configure(o.header_digest, o.data_digest, /*cpda=*/0);
  if (!ctrl.BringUp(q, in.PickValueInArray<uint32_t>({4096, 65536})).ok()) return 0;

  std::vector<uint8_t> buffers(8 * 16384);
  uint64_t next_cookie = 1;
  auto submit = [&] {
    if (!q.CanSubmit()) return;
    const uint64_t cookie = next_cookie++;
    uint8_t* buf = buffers.data() + (cookie % 8) * 16384;
    const uint32_t blocks = in.ConsumeIntegralInRange<uint32_t>(1, 32);
    const uint32_t len = blocks * 512;
    int cid = -1;
    switch (in.ConsumeIntegralInRange(0, 2)) {
      case 0:
        cid = q.Submit(nvme::BuildRead(1, 0, blocks), buf, len, cookie);
        break;
      case 1:
        cid = q.Submit(nvme::BuildWrite(1, 0, blocks, false), buf, len, cookie);
        break;
      default:
        cid = q.Submit(nvme::BuildFlush(1), nullptr, 0, cookie);
        break;
    }
    if (cid >= 0) obs.submitted[cookie] = 1;
  };
  for (int i = 0; i < 3; ++i) submit();

  while (in.remaining_bytes() > 0 && q.state() != tcp::HostQueue::State::kFailed) {
    switch (in.ConsumeIntegralInRange(0, 3)) {
      case 0: {  // controller bytes, 1..300 at a time
        const std::vector<uint8_t> bytes =
            in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(1, 300));
        q.Feed(bytes.data(), bytes.size());
        break;
      }
      case 1: {  // the socket took part of what is pending
        if (!q.HasPendingSend()) break;
        iovec iov[64];
        const int n = q.PendingSend(iov, 64);
        size_t total = 0;
        for (int i = 0; i < n; ++i) total += iov[i].iov_len;
        q.SendComplete(in.ConsumeIntegralInRange<size_t>(0, total));
        break;
      }
      case 2:
        submit();
        break;
      default:
        if (q.termination_due()) q.BeginTermination();
        break;
    }
  }
  if (q.termination_due()) q.BeginTermination();
  q.FailOutstanding(-ECONNABORTED);
  // Bytes of a command that completed with an error while they were being sent: written now.
  while (q.HasPendingSend()) {
    iovec iov[64];
    const int n = q.PendingSend(iov, 64);
    size_t total = 0;
    for (int i = 0; i < n; ++i) total += iov[i].iov_len;
    if (total == 0) break;
    q.SendComplete(total);
  }
  FUZZ_CHECK(q.outstanding() == 0);
  for (const auto& [cookie, unused] : obs.submitted) FUZZ_CHECK(obs.done[cookie] == 1);
  return 0;
}
