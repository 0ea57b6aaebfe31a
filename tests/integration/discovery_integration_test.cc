// Discovery through the engine against tools/nvmf-target (DESIGN.md §3 "discovery log page with
// referrals", §7): a discovery controller reads the whole log (an entry per subsystem and port, the
// referrals, the generation counter), is told of changes by a discovery log change AEN, and the
// entries it returns are good enough to connect to.
#include <algorithm>
#include <string>
#include <vector>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/engine.h"
#include "tests/integration/engine_harness.h"
#include "nvme/commands.h"
#include "nvme/log_pages.h"
#include "tools/nvmf-target/target.h"

namespace nvmf_ublk::io {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;
using testing::HostOptions;
using testing::kSec;
using testing::TestController;

constexpr char kNqnA[] = "nqn.2026-01.io.nvmf-ublk:disc-a";
constexpr char kNqnB[] = "nqn.2026-01.io.nvmf-ublk:disc-b";
constexpr char kNqnC[] = "nqn.2026-01.io.nvmf-ublk:disc-c";

target::SubsystemConfig Subsystem(const std::string& nqn, std::vector<size_t> ports) {
  target::SubsystemConfig s;
  s.nqn = nqn;
  target::NamespaceConfig ns;
  ns.size_bytes = 1 << 20;
  s.namespaces = {ns};
  s.ports = std::move(ports);
  return s;
}

const nvme::DiscoveryEntry* Find(const std::vector<nvme::DiscoveryEntry>& entries,
                                 const std::string& subnqn, const std::string& trsvcid) {
  for (const auto& e : entries) {
    if (e.subnqn == subnqn && e.trsvcid == trsvcid) return &e;
  }
  return nullptr;
}

class DiscoveryIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target::TargetConfig c;
    c.ports.push_back(target::PortConfig{});
    c.ports.push_back(target::PortConfig{.port_id = 7});
    c.subsystems.push_back(Subsystem(kNqnA, {}));   // both ports
    c.subsystems.push_back(Subsystem(kNqnB, {1}));  // second port only
    c.referrals.push_back(target::ReferralConfig{"10.0.0.2", 4420, 3});
    target_ = std::make_unique<target::Target>(c);
    auto ports = target_->Start();
    ASSERT_THAT(ports, IsOk());
    ports_ = *ports;
    auto engine = Engine::Create(2);
    ASSERT_THAT(engine, IsOk());
    engine_ = std::move(*engine);
  }
  void TearDown() override {
    engine_.reset();
    target_.reset();
  }
  ControllerOptions DiscoveryOptions(size_t port = 0) const {
    ControllerOptions o = HostOptions(ports_[port], nvme::kDiscoveryNqn);
    o.discovery = true;
    return o;
  }
  std::string Port(size_t i) const { return std::to_string(ports_[i]); }
  // GENCTR from the log header, read with our own Get Log Page through the controller.
  uint64_t Generation(TestController* c) {
    std::vector<uint8_t> buf(1024);
    const IoResult r =
        c->Admin(nvme::BuildGetLogPage(nvme::LogPageId::kDiscovery, 0, 0, 1024), buf.data(), 1024);
    EXPECT_TRUE(r.ok()) << r.ToStatus("Get Log Page");
    auto header = nvme::ParseDiscoveryLogHeader(buf.data(), buf.size());
    EXPECT_THAT(header, IsOk());
    return header.ok() ? header->genctr : 0;
  }

  std::unique_ptr<target::Target> target_;
  std::vector<uint16_t> ports_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(DiscoveryIntegrationTest, LogListsEverySubsystemPortAndTheReferrals) {
  ASSERT_OK_AND_ASSIGN(auto dc, SyncController::Connect(engine_.get(), DiscoveryOptions()));
  EXPECT_TRUE(dc->controller()->info().IsDiscoveryController());
  EXPECT_EQ(dc->controller()->io_queue_count(), 0u);
  EXPECT_EQ(dc->controller()->options().kato_s, 30);  // the discovery default
  ASSERT_OK_AND_ASSIGN(std::vector<nvme::DiscoveryEntry> entries, dc->DiscoveryLog());
  ASSERT_EQ(entries.size(), 4u);
  struct Want {
    const char* nqn;
    size_t port;
    uint16_t portid;
  };
  for (const Want& w : {Want{kNqnA, 0, 1}, Want{kNqnA, 1, 7}, Want{kNqnB, 1, 7}}) {
    SCOPED_TRACE(std::string(w.nqn) + " on port " + Port(w.port));
    const nvme::DiscoveryEntry* e = Find(entries, w.nqn, Port(w.port));
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->trtype, nvme::kTrtypeTcp);
    EXPECT_EQ(e->adrfam, nvme::kAdrfamIpv4);
    EXPECT_EQ(e->subtype, nvme::kSubtypeNvme);
    EXPECT_FALSE(e->IsReferral());
    EXPECT_EQ(e->traddr, "127.0.0.1");
    EXPECT_EQ(e->portid, w.portid);
    EXPECT_EQ(e->cntlid, 0xFFFF);
  }
  EXPECT_EQ(Find(entries, kNqnB, Port(0)), nullptr);  // B is not exported on the first port
  const auto referral =
      std::find_if(entries.begin(), entries.end(), [](const auto& e) { return e.IsReferral(); });
  ASSERT_NE(referral, entries.end());
  EXPECT_EQ(referral->subnqn, nvme::kDiscoveryNqn);
  EXPECT_EQ(referral->traddr, "10.0.0.2");
  EXPECT_EQ(referral->trsvcid, "4420");
  EXPECT_EQ(referral->portid, 3);
  dc->Disconnect();
  EXPECT_EQ(dc->state(), Controller::kDeleted);
}

TEST_F(DiscoveryIntegrationTest, ChangesRaiseAnAenAndBumpTheGeneration) {
  ASSERT_OK_AND_ASSIGN(auto dc, TestController::Connect(engine_.get(), DiscoveryOptions()));
  const uint64_t gen = Generation(dc.get());
  EXPECT_EQ(gen, target_->discovery_generation());
  ASSERT_OK_AND_ASSIGN(auto entries, dc->DiscoveryLog());
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_TRUE(dc->events().empty());

  // A new referral: an AEN (notice, discovery log changed, log page 70h), one more entry.
  ASSERT_THAT(target_->AddReferral(target::ReferralConfig{"fe80::1", 8009, 0}), IsOk());
  ASSERT_TRUE(dc->WaitEvents(1, 5 * kSec));
  const nvme::AsyncEvent ev = dc->events()[0];
  EXPECT_EQ(ev.type, nvme::kAerTypeNotice);
  EXPECT_EQ(ev.info, nvme::kAerNoticeDiscoveryLogChange);
  EXPECT_EQ(ev.log_page, 0x70);
  ASSERT_OK_AND_ASSIGN(entries, dc->DiscoveryLog());
  ASSERT_EQ(entries.size(), 5u);
  const auto v6 = std::find_if(entries.begin(), entries.end(), [](const auto& e) {
    return e.IsReferral() && e.traddr == "fe80::1";
  });
  ASSERT_NE(v6, entries.end());
  EXPECT_EQ(v6->adrfam, nvme::kAdrfamIpv6);
  EXPECT_EQ(v6->trsvcid, "8009");
  EXPECT_EQ(Generation(dc.get()), gen + 1);

  // The AER was re-armed: a new subsystem is the next event.
  ASSERT_THAT(target_->AddSubsystem(Subsystem(kNqnC, {0})), IsOk());
  ASSERT_TRUE(dc->WaitEvents(2, 5 * kSec));
  EXPECT_EQ(dc->events()[1].info, nvme::kAerNoticeDiscoveryLogChange);
  ASSERT_OK_AND_ASSIGN(entries, dc->DiscoveryLog());
  EXPECT_EQ(entries.size(), 6u);
  EXPECT_NE(Find(entries, kNqnC, Port(0)), nullptr);
  EXPECT_EQ(Generation(dc.get()), gen + 2);

  // And a removal.
  ASSERT_THAT(target_->RemoveReferral("10.0.0.2", 4420), IsOk());
  ASSERT_TRUE(dc->WaitEvents(3, 5 * kSec));
  ASSERT_OK_AND_ASSIGN(entries, dc->DiscoveryLog());
  EXPECT_EQ(entries.size(), 5u);
  EXPECT_EQ(Generation(dc.get()), gen + 3);
  EXPECT_EQ(dc->reconnects(), 0u);
  EXPECT_EQ(dc->events().size(), 3u);
}

TEST_F(DiscoveryIntegrationTest, EveryNvmEntryCanBeConnectedTo) {
  ASSERT_OK_AND_ASSIGN(auto dc, SyncController::Connect(engine_.get(), DiscoveryOptions(1)));
  ASSERT_OK_AND_ASSIGN(std::vector<nvme::DiscoveryEntry> entries, dc->DiscoveryLog());
  dc.reset();
  size_t connected = 0;
  for (const nvme::DiscoveryEntry& e : entries) {
    if (e.IsReferral()) continue;
    SCOPED_TRACE(e.subnqn + " at " + e.traddr + ":" + e.trsvcid);
    ControllerOptions o = HostOptions(0, e.subnqn);
    o.traddr = e.traddr;
    o.trsvcid = e.trsvcid;
    ASSERT_OK_AND_ASSIGN(auto c, SyncController::Connect(engine_.get(), o));
    EXPECT_EQ(c->controller()->info().subnqn, e.subnqn);
    EXPECT_EQ(c->controller()->namespaces().size(), 1u);
    std::vector<uint8_t> buf(4096);
    IoRequest req;
    req.Read(1, 0, 8, buf.data(), 4096);
    EXPECT_TRUE(c->Io(0, &req).ok());
    ++connected;
  }
  EXPECT_EQ(connected, 3u);
}

TEST_F(DiscoveryIntegrationTest, DiscoveryLogOfAnNvmSubsystemIsAClearError) {
  // Like the Linux host, a "discovery" connect to an NVM subsystem's NQN comes up (admin queue
  // only); reading the discovery log from it must then fail with the controller's status.
  ControllerOptions o = DiscoveryOptions();
  o.subnqn = kNqnA;
  ASSERT_OK_AND_ASSIGN(auto c, SyncController::Connect(engine_.get(), o));
  EXPECT_FALSE(c->controller()->info().IsDiscoveryController());
  EXPECT_EQ(c->controller()->io_queue_count(), 0u);
  EXPECT_THAT(c->DiscoveryLog(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Get Log Page (Discovery)")));
}

}  // namespace
}  // namespace nvmf_ublk::io
