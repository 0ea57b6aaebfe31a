#include "discovery/config_file.h"

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::discovery {
namespace {

using ::nvmf_ublk::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SplitConfLines, CommentsBlankLinesQuotesAndLineNumbers) {
  ASSERT_OK_AND_ASSIGN(auto lines, SplitConfLines("# Used for extracting default controller\n"
                                                  "\n"
                                                  "   \t\n"
                                                  "-t tcp -a 10.0.0.1 -s 8009   # port 1\n"
                                                  "--transport=tcp --traddr='fe80::1%eth0'\r\n"
                                                  "-a \"a b\" -q nqn.x\\ y\n"
                                                  "#-a 10.0.0.9\n"
                                                  "-a 10.0.0.2",
                                                  "/etc/nvme/discovery.conf"));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].line, 4);
  EXPECT_THAT(lines[0].args, ElementsAre("-t", "tcp", "-a", "10.0.0.1", "-s", "8009"));
  EXPECT_EQ(lines[1].line, 5);
  EXPECT_THAT(lines[1].args, ElementsAre("--transport=tcp", "--traddr=fe80::1%eth0"));
  EXPECT_THAT(lines[2].args, ElementsAre("-a", "a b", "-q", "nqn.x y"));
  EXPECT_EQ(lines[3].line, 8);
  EXPECT_THAT(lines[3].args, ElementsAre("-a", "10.0.0.2"));
}

TEST(SplitConfLines, EmptyFileAndUnterminatedQuote) {
  ASSERT_OK_AND_ASSIGN(auto none, SplitConfLines("", "f"));
  EXPECT_TRUE(none.empty());
  EXPECT_THAT(SplitConfLines("-a 1\n-a \"10.0.0.1 -s 8009\n", "/etc/nvme/discovery.conf"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("/etc/nvme/discovery.conf:2: unterminated \" quote")));
}

TEST(ParseJsonConfig, DiscoveryPortsAndIoPortsWithTheirHost) {
  ASSERT_OK_AND_ASSIGN(auto ports, ParseJsonConfig(R"([
    {"hostnqn": "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
     "hostid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
     "dhchap_key": "DHHC-1:00:host:",
     "subsystems": [
       {"nqn": "nqn.2014-08.org.nvmexpress.discovery",
        "ports": [{"transport": "tcp", "traddr": "10.0.0.1", "trsvcid": "8009",
                   "persistent": true, "dhchap_key": "DHHC-1:00:port:",
                   "dhchap_ctrl_key": "DHHC-1:00:ctrl:"}]},
       {"nqn": "nqn.x:a",
        "ports": [{"transport": "tcp", "traddr": "10.0.0.2", "trsvcid": "4420",
                   "keep_alive_tmo": 15, "hdr_digest": true},
                  {"transport": "rdma", "traddr": "10.0.0.3"}]}]}])",
                                                   "/etc/nvme/config.json"));
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_TRUE(ports[0].discovery);
  EXPECT_EQ(ports[0].persistent, 1);
  EXPECT_EQ(ports[0].hostid, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  EXPECT_EQ(ports[0].dhchap_key, "DHHC-1:00:port:");  // the port's wins over the host's
  EXPECT_EQ(ports[0].dhchap_ctrl_key, "DHHC-1:00:ctrl:");
  EXPECT_EQ(ports[1].dhchap_key, "DHHC-1:00:host:");
  EXPECT_EQ(ports[1].dhchap_ctrl_key, "");
  EXPECT_FALSE(ports[1].discovery);
  EXPECT_EQ(ports[1].subnqn, "nqn.x:a");
  EXPECT_EQ(ports[1].keep_alive_tmo, 15);
  EXPECT_EQ(ports[1].hdr_digest, 1);
  EXPECT_EQ(ports[1].data_digest, -1);
}

TEST(ParseJsonConfig, BadValuesNameTheirPlace) {
  EXPECT_THAT(ParseJsonConfig("{", "c.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("c.json is not valid JSON")));
  EXPECT_THAT(
      ParseJsonConfig(R"([{"subsystems": [{"nqn": "n", "ports": [{"traddr": 5}]}]}])", "c.json"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("c.json: hosts[0].subsystems[0].ports[0].traddr must be a string")));
  EXPECT_THAT(
      ParseJsonConfig(R"([{"subsystems": [{"nqn": "n", "ports": [{"trsvcid": "1"}]}]}])", "c.json"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has no traddr")));
  ASSERT_OK_AND_ASSIGN(auto none, ParseJsonConfig(R"({"hosts": []})", "c.json"));
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace nvmf_ublk::discovery
