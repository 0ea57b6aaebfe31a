// The engine against the Linux kernel's own NVMe/TCP target (nvmet-tcp), run inside the guest by
// tests/guest/t_engine_nvmet.sh, which sets up the target and passes it in the environment:
//   NVMF_TEST_TRADDR, NVMF_TEST_PORT, NVMF_TEST_NQN (one namespace of NVMF_TEST_NS_BYTES bytes).
// Skips when the environment is not set (e.g. when run on the host by mistake).
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/engine.h"

namespace nvmf_ublk::io {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

struct Env {
  std::string traddr, port, nqn;
  uint64_t ns_bytes = 0;
};

std::optional<Env> GetEnv() {
  const char* a = getenv("NVMF_TEST_TRADDR");
  const char* p = getenv("NVMF_TEST_PORT");
  const char* n = getenv("NVMF_TEST_NQN");
  const char* b = getenv("NVMF_TEST_NS_BYTES");
  if (!a || !p || !n || !b) return std::nullopt;
  return Env{a, p, n, std::strtoull(b, nullptr, 10)};
}

ControllerOptions Opts(const Env& env, const std::string& nqn) {
  ControllerOptions o;
  o.traddr = env.traddr;
  o.trsvcid = env.port;
  o.subnqn = nqn;
  o.hostnqn = "nqn.2014-08.org.nvmexpress:uuid:5a1c0000-0000-4000-8000-000000000001";
  for (int i = 0; i < 16; ++i) o.hostid[i] = static_cast<uint8_t>(0x5a + i);
  o.connect_timeout_ns = 20'000'000'000;  // TCG guests are slow
  o.reconnect_delay_s = 1;
  return o;
}

class EngineNvmetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = GetEnv();
    if (!env) GTEST_SKIP() << "NVMF_TEST_* not set: run through tests/guest/t_engine_nvmet.sh";
    env_ = *env;
    auto engine = Engine::Create(2);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }
  Env env_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineNvmetTest, DiscoveryLogListsTheSubsystem) {
  ControllerOptions o = Opts(env_, nvme::kDiscoveryNqn);
  o.discovery = true;
  ASSERT_OK_AND_ASSIGN(auto dc, SyncController::Connect(engine_.get(), o));
  EXPECT_TRUE(dc->controller()->info().IsDiscoveryController());
  ASSERT_OK_AND_ASSIGN(auto entries, dc->DiscoveryLog());
  bool found = false;
  for (const auto& e : entries) {
    if (e.subnqn == env_.nqn && e.trsvcid == env_.port) found = true;
  }
  EXPECT_TRUE(found) << entries.size() << " entries, none for " << env_.nqn;
}

void WriteReadVerify(SyncController* c, const Env& env, uint64_t bytes, uint32_t chunk) {
  const auto& ns = c->controller()->namespaces();
  ASSERT_EQ(ns.size(), 1u);
  const uint32_t lba = ns[0].info.lba_bytes;
  ASSERT_EQ(ns[0].info.nsze * lba, env.ns_bytes);
  std::mt19937_64 rng(42);
  std::vector<uint8_t> pattern(bytes);
  for (auto& b : pattern) b = static_cast<uint8_t>(rng());
  const uint32_t queues = c->controller()->io_queue_count();
  ASSERT_GE(queues, 1u);
  for (uint64_t off = 0, i = 0; off < bytes; off += chunk, ++i) {
    IoRequest req;
    req.Write(ns[0].nsid, off / lba, chunk / lba, pattern.data() + off, chunk, false);
    IoResult r = c->Io(i % queues, &req);
    ASSERT_TRUE(r.ok()) << r.ToStatus("Write") << " at " << off;
  }
  IoRequest flush;
  flush.Flush(ns[0].nsid);
  ASSERT_TRUE(c->Io(0, &flush).ok());
  std::vector<uint8_t> back(bytes, 0);
  for (uint64_t off = 0, i = 0; off < bytes; off += chunk, ++i) {
    IoRequest req;
    req.Read(ns[0].nsid, off / lba, chunk / lba, back.data() + off, chunk);
    IoResult r = c->Io(i % queues, &req);
    ASSERT_TRUE(r.ok()) << r.ToStatus("Read") << " at " << off;
  }
  ASSERT_TRUE(back == pattern) << "read-back differs from what was written";
}

TEST_F(EngineNvmetTest, Write64MiBAndReadBackNoDigests) {
  ASSERT_OK_AND_ASSIGN(auto c, SyncController::Connect(engine_.get(), Opts(env_, env_.nqn)));
  EXPECT_EQ(c->controller()->io_queue_count(), 2u);
  EXPECT_EQ(c->controller()->info().subnqn, env_.nqn);
  WriteReadVerify(c.get(), env_, 64ull << 20, 128 * 1024);
}

TEST_F(EngineNvmetTest, Write64MiBAndReadBackWithDigests) {
  ControllerOptions o = Opts(env_, env_.nqn);
  o.hdr_digest = o.data_digest = true;
  ASSERT_OK_AND_ASSIGN(auto c, SyncController::Connect(engine_.get(), o));
  WriteReadVerify(c.get(), env_, 64ull << 20, 64 * 1024);
}

TEST_F(EngineNvmetTest, ReadPastTheEndIsAnNvmeErrorNotRetried) {
  ASSERT_OK_AND_ASSIGN(auto c, SyncController::Connect(engine_.get(), Opts(env_, env_.nqn)));
  const auto& ns = c->controller()->namespaces()[0];
  std::vector<uint8_t> buf(ns.info.lba_bytes);
  IoRequest req;
  req.Read(ns.nsid, ns.info.nsze, 1, buf.data(), static_cast<uint32_t>(buf.size()));
  IoResult r = c->Io(0, &req);
  // nvmet's block-device backend answers a read past the end with Internal Error + DNR (its file
  // backend says LBA Out of Range): either way an NVMe status that must not be retried.
  EXPECT_EQ(r.err, 0);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.retry_class(), nvme::RetryClass::kFail) << r.ToStatus("Read");
}

TEST_F(EngineNvmetTest, WrongNqnIsAClearError) {
  auto c = SyncController::Connect(engine_.get(), Opts(env_, "nqn.2026-01.io.nvmf-ublk:nope"));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("Connect Invalid Parameters")));
}

TEST_F(EngineNvmetTest, RefusedPortIsAClearError) {
  Env e = env_;
  e.port = "4999";
  auto c = SyncController::Connect(engine_.get(), Opts(e, env_.nqn));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Connection refused")));
}

}  // namespace
}  // namespace nvmf_ublk::io
