#include "discovery/reconcile.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nvme/spec.h"

namespace nvmf_ublk::discovery {
namespace {

constexpr int64_t kS = 1'000'000'000;

nvme::DiscoveryEntry Rec(const std::string& nqn, const std::string& port,
                         uint8_t subtype = nvme::kSubtypeNvme) {
  nvme::DiscoveryEntry e;
  e.trtype = 3;
  e.adrfam = 1;
  e.subtype = subtype;
  e.subnqn = nqn;
  e.traddr = "10.0.0.1";
  e.trsvcid = port;
  return e;
}

std::vector<std::string> Keys(const std::vector<Reconciler::Action>& acts,
                              Reconciler::Action::Kind kind) {
  std::vector<std::string> out;
  for (const auto& a : acts) {
    if (a.kind == kind) out.push_back(a.entry.subnqn + "@" + a.entry.trsvcid);
  }
  return out;
}

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Kind = Reconciler::Action::Kind;

TEST(ConnectableRecords, SkipsDiscoverySubsystemsAndDuplicatesKeepsOrder) {
  auto other = Rec("nqn.x:fc", "4420");
  other.trtype = 2;  // fc
  std::vector<std::string> skipped;
  auto recs = ConnectableRecords(
      {{Rec("nqn.x:a", "4420"), Rec(nvme::kDiscoveryNqn, "8009", nvme::kSubtypeCurrentDiscovery),
        Rec("nqn.x:b", "4420"),
        Rec("nqn.2014-08.org.nvmexpress.discovery", "8010", nvme::kSubtypeDiscoveryReferral)},
       {Rec("nqn.x:a", "4420"), Rec("nqn.x:a", "4421"), other}},
      &skipped);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].subnqn, "nqn.x:a");
  EXPECT_EQ(recs[1].subnqn, "nqn.x:b");
  EXPECT_EQ(recs[2].trsvcid, "4421");  // the same subsystem through another portal: a path
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_THAT(skipped[0], ::testing::HasSubstr("trtype fc"));
}

TEST(Reconciler, ConnectsNewRecordsAndKeepsThemWhileListed) {
  Reconciler r(ReconcileOptions{10 * kS, 2 * kS, 60 * kS});
  r.OnLog({Rec("nqn.x:a", "4420"), Rec("nqn.x:b", "4420")}, 0);
  auto acts = r.Poll(0);
  EXPECT_THAT(Keys(acts, Kind::kConnect), ElementsAre("nqn.x:a@4420", "nqn.x:b@4420"));
  EXPECT_THAT(r.Poll(0), IsEmpty());  // connecting: not asked twice
  r.OnConnectResult(KeyOf(Rec("nqn.x:a", "4420")), absl::OkStatus(), true, 1 * kS);
  r.OnConnectResult(KeyOf(Rec("nqn.x:b", "4420")), absl::OkStatus(), true, 1 * kS);
  r.OnLog({Rec("nqn.x:a", "4420"), Rec("nqn.x:b", "4420")}, 5 * kS);
  EXPECT_THAT(r.Poll(100 * kS), IsEmpty());
  EXPECT_EQ(r.Owned().size(), 2u);
  EXPECT_EQ(r.NextDeadline(), 0);
}

TEST(Reconciler, VanishedRecordGoesAfterTheGracePeriodOnly) {
  Reconciler r(ReconcileOptions{10 * kS, 2 * kS, 60 * kS});
  r.OnLog({Rec("nqn.x:a", "4420"), Rec("nqn.x:b", "4420")}, 0);
  r.Poll(0);
  r.OnConnectResult(KeyOf(Rec("nqn.x:a", "4420")), absl::OkStatus(), true, 0);
  r.OnConnectResult(KeyOf(Rec("nqn.x:b", "4420")), absl::OkStatus(), true, 0);
  r.OnLog({Rec("nqn.x:a", "4420")}, 20 * kS);  // b unlinked at the target
  EXPECT_EQ(r.NextDeadline(), 30 * kS);
  EXPECT_THAT(r.Poll(29 * kS), IsEmpty());
  auto status = r.Status();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[1].state, Reconciler::State::kVanishing);
  EXPECT_EQ(status[1].missing_since_ns, 20 * kS);
  EXPECT_THAT(Keys(r.Poll(30 * kS), Kind::kDisconnect), ElementsAre("nqn.x:b@4420"));
  EXPECT_EQ(r.Owned().size(), 1u);
  EXPECT_THAT(r.Poll(31 * kS), IsEmpty());
}

TEST(Reconciler, RecordBackWithinGraceStays) {
  Reconciler r(ReconcileOptions{10 * kS, 2 * kS, 60 * kS});
  r.OnLog({Rec("nqn.x:a", "4420")}, 0);
  r.Poll(0);
  r.OnConnectResult(KeyOf(Rec("nqn.x:a", "4420")), absl::OkStatus(), true, 0);
  r.OnLog({}, 1 * kS);
  r.OnLog({Rec("nqn.x:a", "4420")}, 5 * kS);
  EXPECT_THAT(r.Poll(50 * kS), IsEmpty());
  EXPECT_EQ(r.Owned().size(), 1u);
}

TEST(Reconciler, ForeignConnectionsAreNeverDisconnected) {
  Reconciler r(ReconcileOptions{10 * kS, 2 * kS, 60 * kS});
  r.OnLog({Rec("nqn.x:a", "4420")}, 0);
  r.Poll(0);
  r.OnConnectResult(KeyOf(Rec("nqn.x:a", "4420")), absl::OkStatus(), /*owned=*/false, 0);
  EXPECT_TRUE(r.Owned().empty());
  r.OnLog({}, 1 * kS);
  EXPECT_THAT(r.Poll(100 * kS), IsEmpty());
  EXPECT_TRUE(r.Status().empty());
  // Listed again: asked again (the other connection may be gone by now).
  r.OnLog({Rec("nqn.x:a", "4420")}, 200 * kS);
  EXPECT_THAT(Keys(r.Poll(200 * kS), Kind::kConnect), ElementsAre("nqn.x:a@4420"));
}

TEST(Reconciler, FailedConnectsBackOffExponentiallyUpToTheCap) {
  Reconciler r(ReconcileOptions{10 * kS, 2 * kS, 10 * kS});
  const RecordKey a = KeyOf(Rec("nqn.x:a", "4420"));
  r.OnLog({Rec("nqn.x:a", "4420")}, 0);
  int64_t now = 0;
  std::vector<int64_t> waits;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Keys(r.Poll(now), Kind::kConnect).size(), 1u) << i;
    r.OnConnectResult(a, absl::UnavailableError("connection refused"), true, now);
    const int64_t next = r.NextDeadline();
    waits.push_back((next - now) / kS);
    EXPECT_THAT(r.Poll(next - 1), IsEmpty());
    now = next;
  }
  EXPECT_THAT(waits, ElementsAre(2, 4, 8, 10, 10));
  auto st = r.Status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].failures, 5);
  EXPECT_EQ(st[0].last_error.message(), "connection refused");
  r.OnConnectResult(a, absl::OkStatus(), true, now);  // not connecting: ignored
  r.Poll(now);
  r.OnConnectResult(a, absl::OkStatus(), true, now);
  EXPECT_EQ(r.Status()[0].failures, 0);
  EXPECT_EQ(r.Owned().size(), 1u);
}

TEST(Reconciler, WantedRecordThatVanishesBeforeConnectingIsDropped) {
  Reconciler r(ReconcileOptions{10 * kS, 2 * kS, 10 * kS});
  r.OnLog({Rec("nqn.x:a", "4420")}, 0);
  r.Poll(0);
  r.OnConnectResult(KeyOf(Rec("nqn.x:a", "4420")), absl::UnavailableError("down"), true, 0);
  r.OnLog({}, 1 * kS);
  EXPECT_TRUE(r.Status().empty());
  EXPECT_THAT(r.Poll(100 * kS), IsEmpty());
}

TEST(Reconciler, AdoptedRecordsVanishLikeOwnedOnes) {
  Reconciler r(ReconcileOptions{10 * kS, 2 * kS, 10 * kS});
  r.Adopt(Rec("nqn.x:a", "4420"));  // from the state file after a restart
  r.OnLog({Rec("nqn.x:b", "4420")}, 100 * kS);
  EXPECT_THAT(Keys(r.Poll(100 * kS), Kind::kConnect), ElementsAre("nqn.x:b@4420"));
  EXPECT_THAT(Keys(r.Poll(110 * kS), Kind::kDisconnect), ElementsAre("nqn.x:a@4420"));
}

TEST(Reconciler, ForgottenRecordIsConnectedAgainOnlyWhenListedAgain) {
  Reconciler r(ReconcileOptions{10 * kS, 2 * kS, 10 * kS});
  r.OnLog({Rec("nqn.x:a", "4420")}, 0);
  r.Poll(0);
  r.OnConnectResult(KeyOf(Rec("nqn.x:a", "4420")), absl::OkStatus(), true, 0);
  r.Forget(KeyOf(Rec("nqn.x:a", "4420")));  // disconnected by hand
  EXPECT_THAT(r.Poll(1 * kS), IsEmpty());
  r.OnLog({Rec("nqn.x:a", "4420")}, 2 * kS);
  EXPECT_THAT(Keys(r.Poll(2 * kS), Kind::kConnect), ElementsAre("nqn.x:a@4420"));
}

}  // namespace
}  // namespace nvmf_ublk::discovery
