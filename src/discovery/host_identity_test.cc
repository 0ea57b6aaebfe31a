#include "discovery/host_identity.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "base/testing/status_matchers.h"
#include "discovery/config_file.h"
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

TEST(HostIdentity, GeneratedOnceThenReadFromTheFiles) {
  const std::string dir = "/tmp/nvmf-ublk-hostid-test-" + std::to_string(getpid());
  setenv("NVMF_UBLK_NVME_CONFIG_DIR", dir.c_str(), 1);
  ASSERT_OK_AND_ASSIGN(auto first, ResolveHostIdentity("", ""));
  EXPECT_TRUE(first.nqn_generated);
  EXPECT_TRUE(first.id_generated);
  EXPECT_EQ(first.hostnqn.rfind("nqn.2014-08.org.nvmexpress:uuid:", 0), 0u);
  ASSERT_OK_AND_ASSIGN(auto written, SaveGeneratedIdentity(first));
  EXPECT_EQ(written.size(), 2u);
  ASSERT_OK_AND_ASSIGN(auto again, ResolveHostIdentity("", ""));
  EXPECT_FALSE(again.nqn_generated);
  EXPECT_FALSE(again.id_generated);
  EXPECT_EQ(again.hostnqn, first.hostnqn);
  EXPECT_EQ(again.hostid, first.hostid);
  // An existing file is never replaced.
  HostIdentity other = first;
  other.hostnqn = "nqn.2026-01.io.test:other";
  ASSERT_OK_AND_ASSIGN(auto none, SaveGeneratedIdentity(other));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(auto text, ReadTextFile(dir + "/hostnqn"));
  EXPECT_EQ(text, first.hostnqn + "\n");
  // A host NQN given on the command line: its host ID is not saved as this host's.
  ASSERT_OK_AND_ASSIGN(auto given, ResolveHostIdentity("nqn.2026-01.io.test:given", ""));
  EXPECT_FALSE(given.nqn_generated);
  EXPECT_EQ(given.hostid, first.hostid);  // from the file
  unlink((dir + "/hostnqn").c_str());
  unlink((dir + "/hostid").c_str());
  rmdir(dir.c_str());
  unsetenv("NVMF_UBLK_NVME_CONFIG_DIR");
}

}  // namespace
}  // namespace nvmf_ublk::discovery
