// The fixture of the target's integration tests: a Target in this process on loopback ports,
// with helpers that run admin commands through testing::TestQueue.
#ifndef NVMF_UBLK_TOOLS_NVMF_TARGET_TESTING_TARGET_FIXTURE_H_
#define NVMF_UBLK_TOOLS_NVMF_TARGET_TESTING_TARGET_FIXTURE_H_

#include <memory>
#include <vector>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/identify.h"
#include "nvme/log_pages.h"
#include "target.h"
#include "testing/test_host.h"

namespace nvmf_ublk::target::testing {

using ::nvmf_ublk::testing::IsOk;

inline constexpr char kNqn[] = "nqn.2026-01.io.nvmf-ublk:test";
inline constexpr uint64_t kNsBytes = 8 << 20;

inline TargetConfig BaseConfig(int ports = 1) {
  TargetConfig c;
  for (int i = 0; i < ports; ++i) c.ports.push_back(PortConfig{});
  SubsystemConfig s;
  s.nqn = kNqn;
  NamespaceConfig ns1;
  ns1.size_bytes = kNsBytes;
  ns1.block_size = 512;
  ns1.ana_group = 1;
  NamespaceConfig ns2 = ns1;
  ns2.block_size = 4096;
  ns2.ana_group = 2;
  s.namespaces = {ns1, ns2};
  c.subsystems.push_back(s);
  return c;
}

class TargetTest : public ::testing::Test {
 protected:
  void Start(TargetConfig config) {
    target_ = std::make_unique<Target>(std::move(config));
    auto ports = target_->Start();
    ASSERT_THAT(ports, IsOk());
    ports_ = *ports;
  }
  Session Connect(int io_queues = 1, tcp::HostQueueOptions io = {}) {
    auto s = ConnectSession(ports_[0], kNqn, io_queues, io);
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : Session{};
  }
  std::vector<uint8_t> Identify(TestQueue& q, nvme::IdentifyCns cns, uint32_t nsid,
                                uint32_t cdw11 = 0) {
    std::vector<uint8_t> buf(4096);
    nvme::Sqe sqe = nvme::BuildIdentify(cns, nsid);
    sqe.cdw11.set(cdw11);
    auto c = q.Run(sqe, buf.data(), 4096);
    EXPECT_THAT(c, IsOk());
    if (c.ok()) {
      EXPECT_TRUE(c->ok()) << "status " << c->status();
    }
    return buf;
  }
  Completion Run(TestQueue& q, const nvme::Sqe& sqe, void* data = nullptr, uint32_t len = 0) {
    auto c = q.Run(sqe, data, len);
    EXPECT_THAT(c, IsOk());
    return c.ok() ? *c : Completion{};
  }
  std::vector<uint8_t> GetLog(TestQueue& q, nvme::LogPageId lid, uint64_t offset, uint32_t len,
                              uint8_t lsp = 0) {
    std::vector<uint8_t> buf(len);
    Completion c =
        Run(q, nvme::BuildGetLogPage(lid, 0xFFFFFFFF, offset, len, lsp), buf.data(), len);
    EXPECT_TRUE(c.ok()) << "status " << c.status();
    return buf;
  }

  std::unique_ptr<Target> target_;
  std::vector<uint16_t> ports_;
};

}  // namespace nvmf_ublk::target::testing

#endif  // NVMF_UBLK_TOOLS_NVMF_TARGET_TESTING_TARGET_FIXTURE_H_
