#include "discovery/host_identity.h"

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::discovery {
namespace {

using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

TEST(HostIdentity, UuidRoundTrip) {
  ASSERT_OK_AND_ASSIGN(auto b, ParseUuid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
  EXPECT_EQ(b[0], 0x0f);
  EXPECT_EQ(b[15], 0x0e);
  EXPECT_EQ(FormatUuid(b), "0f8fad5b-d9cb-469f-a165-70867728950e");
  EXPECT_THAT(ParseUuid("0f8fad5b-d9cb-469f-a165"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUuid("0f8fad5bxd9cb-469f-a165-70867728950e"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseUuid("0g8fad5b-d9cb-469f-a165-70867728950e"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HostIdentity, ExplicitValuesWin) {
  ASSERT_OK_AND_ASSIGN(auto id, ResolveHostIdentity("nqn.2026-01.io.test:host",
                                                    "12345678-1234-1234-1234-123456789abc"));
  EXPECT_EQ(id.hostnqn, "nqn.2026-01.io.test:host");
  EXPECT_EQ(id.hostid, "12345678-1234-1234-1234-123456789abc");
  EXPECT_EQ(id.hostid_bytes[1], 0x34);
}

TEST(HostIdentity, HostIdFromUuidNqn) {
  // Only when /etc/nvme/hostid does not exist does the NQN's UUID become the host ID.
  ASSERT_OK_AND_ASSIGN(
      auto id, ResolveHostIdentity(
                   "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", ""));
  EXPECT_EQ(id.hostid.size(), 36u);
}

TEST(HostIdentity, BadValuesAreRejected) {
  EXPECT_THAT(ResolveHostIdentity("iqn.bad", "12345678-1234-1234-1234-123456789abc"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a valid NQN")));
  EXPECT_THAT(ResolveHostIdentity("nqn.ok", "not-a-uuid"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a UUID")));
}

}  // namespace
}  // namespace nvmf_ublk::discovery
