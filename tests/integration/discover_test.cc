// Discovery across referrals against two in-process targets (tools/nvmf-target) that refer to
// each other (a loop), plus a referral to a dead port.
#include "discovery/discover.h"

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "target.h"  // tools/nvmf-target

namespace nvmf_ublk::discovery {
namespace {

using ::nvmf_ublk::testing::StatusIs;

std::unique_ptr<target::Target> StartTarget(const std::string& nqn, uint16_t* port) {
  target::TargetConfig cfg;
  cfg.ports.push_back(target::PortConfig{});
  target::SubsystemConfig sub;
  sub.nqn = nqn;
  target::NamespaceConfig ns;
  ns.size_bytes = 1 << 20;
  sub.namespaces.push_back(ns);
  cfg.subsystems.push_back(sub);
  auto t = std::make_unique<target::Target>(cfg);
  auto ports = t->Start();
  EXPECT_TRUE(ports.ok()) << ports.status();
  *port = (*ports)[0];
  return t;
}

io::ControllerOptions Base(uint16_t port) {
  io::ControllerOptions o;
  o.traddr = "127.0.0.1";
  o.trsvcid = std::to_string(port);
  o.hostnqn = "nqn.2026-01.io.nvmf-ublk:test-host";
  o.hostid = {1, 2, 3};
  o.connect_timeout_ns = 2'000'000'000;
  return o;
}

TEST(DiscoverWithReferrals, FollowsReferralsOnceEachAndRecordsFailures) {
  uint16_t pa = 0, pb = 0;
  auto a = StartTarget("nqn.2026-01.io.test:a", &pa);
  auto b = StartTarget("nqn.2026-01.io.test:b", &pb);
  ASSERT_TRUE(a->AddReferral(target::ReferralConfig{"127.0.0.1", pb, 0}).ok());
  ASSERT_TRUE(b->AddReferral(target::ReferralConfig{"127.0.0.1", pa, 0}).ok());  // a loop
  ASSERT_TRUE(b->AddReferral(target::ReferralConfig{"127.0.0.1", 1, 0}).ok());   // nobody there
  auto engine = io::Engine::Create(1);
  ASSERT_TRUE(engine.ok());

  ASSERT_OK_AND_ASSIGN(auto logs, DiscoverWithReferrals(engine->get(), Base(pa)));
  ASSERT_EQ(logs.size(), 3u);
  EXPECT_EQ(logs[0].trsvcid, std::to_string(pa));
  EXPECT_EQ(logs[0].depth, 0);
  EXPECT_EQ(logs[1].trsvcid, std::to_string(pb));
  EXPECT_EQ(logs[1].depth, 1);
  EXPECT_TRUE(logs[1].status.ok());
  EXPECT_EQ(logs[2].trsvcid, "1");
  EXPECT_THAT(logs[2].status, StatusIs(absl::StatusCode::kUnavailable));
  auto has = [](const DiscoveryLogResult& r, const std::string& nqn) {
    for (const auto& e : r.entries) {
      if (e.subnqn == nqn && !e.IsReferral()) return true;
    }
    return false;
  };
  EXPECT_TRUE(has(logs[0], "nqn.2026-01.io.test:a"));
  EXPECT_TRUE(has(logs[1], "nqn.2026-01.io.test:b"));

  // The first controller failing is an error of the whole call.
  EXPECT_THAT(DiscoverWithReferrals(engine->get(), Base(1)),
              StatusIs(absl::StatusCode::kUnavailable));
  // A bound on the number of controllers read.
  ASSERT_OK_AND_ASSIGN(auto one, DiscoverWithReferrals(engine->get(), Base(pa), 1));
  EXPECT_EQ(one.size(), 1u);
}

}  // namespace
}  // namespace nvmf_ublk::discovery
