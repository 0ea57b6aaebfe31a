// Shared pieces of the host queue unit tests: an observer that records completions and failures,
// queue options for a test subsystem, and a data pattern.
#ifndef NVMF_UBLK_TCP_TESTING_HOST_QUEUE_TESTING_H_
#define NVMF_UBLK_TCP_TESTING_HOST_QUEUE_TESTING_H_

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "nvme/spec.h"
#include "tcp/host_queue.h"
#include "tcp/testing/fake_controller.h"

namespace nvmf_ublk::tcp::testing {

inline constexpr char kSubNqn[] = "nqn.2026-01.io.test:sub1";
inline constexpr char kHostNqn[] =
    "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001";

struct Done {
  nvme::Cqe cqe;
  int error;
};

// Records every completion (a second one for the same cookie is a test failure) and failure.
class Observer : public HostQueueObserver {
 public:
  void OnQueueLive(uint16_t cntlid) override { live_cntlid = cntlid; }
  void OnCommandDone(uint64_t cookie, const nvme::Cqe& cqe, int error) override {
    EXPECT_EQ(done.count(cookie), 0u) << "cookie " << cookie << " completed twice";
    done[cookie] = Done{cqe, error};
  }
  void OnQueueFailed(const absl::Status& status) override {
    ++failures;
    failure = status;
  }
  std::optional<uint16_t> live_cntlid;
  std::map<uint64_t, Done> done;
  int failures = 0;
  absl::Status failure;
};

// Admin queue (qid 0) with KATO 5 s and a dynamic controller ID, or I/O queue `qid` of
// controller 7.
inline HostQueueOptions Opts(uint16_t qid = 0, uint16_t size = 32) {
  HostQueueOptions o;
  o.qid = qid;
  o.queue_size = size;
  o.kato_ms = qid == 0 ? 5000 : 0;
  o.subnqn = kSubNqn;
  o.hostnqn = kHostNqn;
  for (int i = 0; i < 16; ++i) o.hostid[i] = static_cast<uint8_t>(0xA0 + i);
  o.cntlid = qid == 0 ? nvme::kAdminCntlidDynamic : 7;
  return o;
}

inline std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31 + (i >> 8));
  return v;
}

// A fixture with one fake controller and one observer.
class HostQueueTest : public ::testing::Test {
 protected:
  void Connect(HostQueue& q, uint32_t maxh2cdata = 65536, size_t chunk = SIZE_MAX) {
    const absl::Status s = ctrl.BringUp(q, maxh2cdata, chunk);
    ASSERT_TRUE(s.ok()) << s << "; queue failure: " << obs.failure;
  }

  FakeController ctrl;
  Observer obs;
};

}  // namespace nvmf_ublk::tcp::testing

#endif  // NVMF_UBLK_TCP_TESTING_HOST_QUEUE_TESTING_H_
