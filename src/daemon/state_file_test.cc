#include "daemon/state_file.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::daemon {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::HasSubstr;

std::string TempPath() { return "/tmp/nvmf-ublk-state-test-" + std::to_string(getpid()) + ".json"; }

TEST(StateFile, MissingFileIsEmptyState) {
  ASSERT_OK_AND_ASSIGN(State s, LoadState("/tmp/nvmf-ublk-no-such-state.json"));
  EXPECT_TRUE(s.connections.empty());
}

TEST(StateFile, RoundTrip) {
  const std::string path = TempPath();
  State s;
  ConnectionRecord c;
  c.args.traddr = "10.1.2.3";
  c.args.subnqn = "nqn.2026-01.io.test:s";
  c.args.hostnqn = "nqn.2026-01.io.test:h";
  c.args.hostid = "12345678-1234-1234-1234-123456789abc";
  c.args.ctrl_loss_tmo = -1;
  c.devices.push_back(DeviceRecord{1, 3, "nguid.0011"});
  c.devices.push_back(DeviceRecord{2, 4, ""});
  s.connections.push_back(c);
  ASSERT_THAT(SaveState(path, s), IsOk());
  ASSERT_OK_AND_ASSIGN(State back, LoadState(path));
  ASSERT_EQ(back.connections.size(), 1u);
  EXPECT_EQ(back.connections[0].args.traddr, "10.1.2.3");
  EXPECT_EQ(back.connections[0].args.hostid, "12345678-1234-1234-1234-123456789abc");
  EXPECT_EQ(back.connections[0].args.ctrl_loss_tmo, -1);
  ASSERT_EQ(back.connections[0].devices.size(), 2u);
  EXPECT_EQ(back.connections[0].devices[0].dev_id, 3);
  EXPECT_EQ(back.connections[0].devices[0].stable_id, "nguid.0011");
  EXPECT_EQ(access((path + ".tmp").c_str(), F_OK), -1);  // no temporary left behind
  unlink(path.c_str());
}

TEST(StateFile, PersistentDiscoveryControllersAndOwnersRoundTrip) {
  State st;
  ConnectionRecord c;
  c.args.traddr = "10.0.0.2";
  c.args.subnqn = "nqn.x:a";
  c.args.hostid = "12345678-1234-1234-1234-123456789abc";
  c.args.owner = "discovery:10.0.0.1:8009";
  c.args.tos = 16;
  c.args.disable_sqflow = true;
  st.connections.push_back(c);
  DiscoveryControllerRecord d;
  d.id = "10.0.0.1:8009";
  d.args.args.traddr = "10.0.0.1";
  d.args.args.trsvcid = "8009";
  d.args.persistent = true;
  d.args.grace_s = 7;
  d.owner = "autoconnect";
  st.discovery.push_back(d);
  ASSERT_OK_AND_ASSIGN(auto text, [&]() -> absl::StatusOr<std::string> {
    const std::string path = absl::StrCat("/tmp/nvmf-ublk-state-dc-", getpid(), ".json");
    RETURN_IF_ERROR(SaveState(path, st));
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    unlink(path.c_str());
    return ss.str();
  }());
  ASSERT_OK_AND_ASSIGN(State back, ParseState(text, "state.json"));
  ASSERT_EQ(back.connections.size(), 1u);
  EXPECT_EQ(back.connections[0].args.owner, "discovery:10.0.0.1:8009");
  EXPECT_EQ(back.connections[0].args.tos, 16);
  EXPECT_TRUE(back.connections[0].args.disable_sqflow);
  ASSERT_EQ(back.discovery.size(), 1u);
  EXPECT_EQ(back.discovery[0].id, "10.0.0.1:8009");
  EXPECT_EQ(back.discovery[0].owner, "autoconnect");
  EXPECT_EQ(back.discovery[0].args.grace_s, 7);
  EXPECT_TRUE(back.discovery[0].args.persistent);
  EXPECT_THAT(ParseState(R"({"version": 1, "discovery": [{"id": "x"}]})", "s.json"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("discovery controller 1")));
}

TEST(StateFile, CorruptFileIsDataLoss) {
  const std::string path = TempPath();
  std::ofstream(path) << "{ half";
  EXPECT_THAT(LoadState(path), StatusIs(absl::StatusCode::kDataLoss));
  std::ofstream(path) << R"({"version":1,"connections":[{"args":{"transport":"rdma"}}]})";
  EXPECT_THAT(LoadState(path), StatusIs(absl::StatusCode::kDataLoss));
  std::ofstream(path) << R"({"connections":[]})";  // no format version
  EXPECT_THAT(LoadState(path), StatusIs(absl::StatusCode::kDataLoss));
  std::ofstream(path) << R"({"version":"1","connections":[]})";
  EXPECT_THAT(LoadState(path), StatusIs(absl::StatusCode::kDataLoss));
  unlink(path.c_str());
}

// Device records of the wrong shape are a clear error naming the record, never an exception (the
// daemon reads this file at every start: a throw would be a crash loop).
TEST(StateFile, MalformedDeviceRecordsAreDataLossNotAThrow) {
  const std::string args =
      R"({"traddr":"10.0.0.1","subnqn":"nqn.2026-01.io.test:a","hostid":"12345678-1234-1234-1234-123456789abc"})";
  const struct {
    const char* devices;
    const char* message;
  } cases[] = {
      {"[5]", "connection 1 device 1: not a JSON object"},
      {R"([{"nsid":1,"dev_id":0},{"nsid":"2"}])",
       "connection 1 device 2: nsid \"2\" is not an integer"},
      {R"([{"nsid":1,"dev_id":1e300}])", "dev_id 1e+300 is not an integer"},
      {R"([{"nsid":-1}])", "nsid -1 is not an integer in [0, 4294967295]"},
      {R"([{"nsid":1,"dev_id":18446744073709551615}])", "dev_id 18446744073709551615"},
      {R"([{"nsid":1,"stable_id":[]}])", "stable_id is not a string"},
      {R"([{"nsid":1,"dev_id":3,"stable_id":{"a":1}}])", "stable_id is not a string"},
  };
  for (const auto& c : cases) {
    const std::string text = absl::StrCat(R"({"version":1,"connections":[{"args":)", args,
                                          R"(,"devices":)", c.devices, "}]}");
    EXPECT_THAT(ParseState(text, "/run/x/state.json"),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(c.message)))
        << text;
  }
  ASSERT_OK_AND_ASSIGN(
      State ok, ParseState(absl::StrCat(R"({"version":1,"connections":[{"args":)", args,
                                        R"(,"devices":[{"nsid":4,"dev_id":2,"stable_id":"x"}]}]})"),
                           "s"));
  ASSERT_EQ(ok.connections.size(), 1u);
  ASSERT_EQ(ok.connections[0].devices.size(), 1u);
  EXPECT_EQ(ok.connections[0].devices[0].nsid, 4u);
  EXPECT_EQ(ok.connections[0].devices[0].dev_id, 2);
}

// Version 1 while no device has two paths (version-1 daemons read such a file correctly);
// version 2 once one device is listed under two connections, with its I/O policy kept.
TEST(StateFile, WritesTheOldestVersionThatHoldsIt) {
  const std::string path = TempPath();
  auto text_of = [&] {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  ASSERT_THAT(SaveState(path, State{}), IsOk());
  EXPECT_THAT(text_of(), ::testing::HasSubstr("\"version\": 1"));
  ConnectArgs a;
  a.traddr = "10.0.0.1";
  a.subnqn = "nqn.2026-01.io.test:s";
  ConnectArgs b = a;
  b.traddr = "10.0.0.2";
  State two{{ConnectionRecord{a, {DeviceRecord{1, 3, "nguid.00ab", "queue-depth"}}},
             ConnectionRecord{b, {DeviceRecord{1, 4, "nguid.00cd", ""}}}}};
  EXPECT_EQ(StateFormatVersionFor(two), 1);
  two.connections[1].devices[0].dev_id = 3;  // a second path of /dev/ublkb3
  EXPECT_EQ(StateFormatVersionFor(two), 2);
  ASSERT_THAT(SaveState(path, two), IsOk());
  EXPECT_THAT(text_of(), ::testing::HasSubstr("\"version\": 2"));
  ASSERT_OK_AND_ASSIGN(State back, LoadState(path));
  ASSERT_EQ(back.connections.size(), 2u);
  EXPECT_EQ(back.connections[0].devices[0].iopolicy, "queue-depth");
  EXPECT_EQ(back.connections[1].devices[0].dev_id, 3);
  EXPECT_EQ(back.connections[1].args.traddr, "10.0.0.2");
  unlink(path.c_str());
}

// A newer daemon's file is refused with a message that says what to do, and is left untouched.
TEST(StateFile, NewerFormatIsRefusedAndUntouched) {
  const std::string path = TempPath();
  const std::string newer = R"({"version":)" + std::to_string(kStateFormatVersion + 1) +
                            R"(,"connections":[{"args":{"future":true},"devices":[{"x":1}]}]})";
  std::ofstream(path) << newer;
  auto s = LoadState(path);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr("newer nvmf-ublkd"));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, newer);
  unlink(path.c_str());
}

// Fields added later without a version change are ignored by this reader.
TEST(StateFile, UnknownFieldsOfTheSameVersionAreIgnored) {
  const std::string path = TempPath();
  std::ofstream(path) << R"({"version":1,"added_later":{"a":1},"connections":[{"args":)"
                      << R"({"traddr":"10.0.0.1","subnqn":"nqn.2026-01.io.test:s","new":1},)"
                      << R"("devices":[{"nsid":1,"dev_id":0,"stable_id":"","new":2}]}]})";
  ASSERT_OK_AND_ASSIGN(State back, LoadState(path));
  ASSERT_EQ(back.connections.size(), 1u);
  EXPECT_EQ(back.connections[0].devices.size(), 1u);
  unlink(path.c_str());
}

}  // namespace
}  // namespace nvmf_ublk::daemon
