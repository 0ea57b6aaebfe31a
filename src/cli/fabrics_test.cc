// The fabrics verbs against in-process targets (tools/nvmf-target): discover across a referral, in
// nvme-cli's shapes, from discovery.conf; the files' errors; refused nvme-cli options.
#include "cli/fabrics.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "cli/cli.h"
#include "control/protocol.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "target.h"  // tools/nvmf-target

namespace nvmf_ublk::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Result {
  int rc;
  std::string out, err;
};

Result Cli(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int rc = RunCli(args, out, err);
  return Result{rc, out.str(), err.str()};
}

class FabricsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/nvmf-ublk-fabrics-test-" + std::to_string(getpid());
    mkdir(dir_.c_str(), 0755);
    setenv("NVMF_UBLK_NVME_CONFIG_DIR", dir_.c_str(), 1);
    Write("hostnqn", "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555\n");
  }
  void TearDown() override {
    unsetenv("NVMF_UBLK_NVME_CONFIG_DIR");
    for (const char* f : {"hostnqn", "hostid", "discovery.conf", "config.json"}) {
      unlink((dir_ + "/" + f).c_str());
    }
    rmdir(dir_.c_str());
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
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
  std::string dir_;
};

TEST_F(FabricsCli, RefusedOptionsSayWhy) {
  // A secret file others can read is refused before anything is sent.
  Write("secret", "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:\n");
  chmod((dir_ + "/secret").c_str(), 0644);
  Result r = Cli({"--socket", "/nonexistent/sock", "connect", "-a", "127.0.0.1", "-n", "nqn.x:y",
                  "--dhchap-secret-file", dir_ + "/secret"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("--dhchap-secret-file: secret file"));
  EXPECT_THAT(r.err, HasSubstr("chmod 600"));
  r = Cli({"--socket", "/nonexistent/sock", "connect", "-a", "127.0.0.1", "-n", "nqn.x:y",
           "--dhchap-ctrl-secret-file", dir_ + "/nonexistent"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("cannot open secret file"));
  r = Cli({"connect", "-a", "127.0.0.1", "-n", "nqn.x:y", "--keyring", ".nvme"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("--keyring: the kernel keyring is not read"));
  r = Cli({"discover", "-a", "127.0.0.1", "--tls"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("--tls: TLS is supported on connect only"));
  r = Cli({"connect", "-a", "127.0.0.1", "-n", "nqn.x:y", "-W", "2"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("--nr-write-queues"));
  r = Cli({"discover", "-a", "127.0.0.1", "-p"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("use connect-all --persistent"));
  r = Cli({"connect", "--help"});
  for (const char* flag : {"--duplicate-connect", "--disable-sqflow", "--tos", "--output-format",
                           "--owner", "--keep-alive-tmo"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
  r = Cli({"connect-all", "--help"});
  for (const char* flag : {"--persistent", "--grace-period", "--quiet", "--verbose", "--context"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
  r = Cli({"connect-all", "-a", "127.0.0.1", "-d", "/dev/nvme0"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("--device: names a kernel discovery controller"));
  r = Cli({"discover", "-a", "127.0.0.1", "-n", "nqn.2014-08.org.example:disc"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("--nqn: only the well-known discovery subsystem NQN is used"));
  EXPECT_EQ(Cli({"connect", "-a", "1.2.3.4", "-n", "n", "-T", "300"}).rc, 2);
}

TEST_F(FabricsCli, DiscoveryConfErrorsNameTheLine) {
  Result r = Cli({"discover"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("no discovery controller: give -a/--traddr, or list one per line"));
  Write("discovery.conf", "# comment\n-t tcp -a 127.0.0.1 -s 1\n--bogus-flag 3\n");
  r = Cli({"discover"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("/discovery.conf:3: "));
  Write("discovery.conf", "-t tcp -s 8009\n");
  r = Cli({"discover"});
  EXPECT_THAT(r.err, HasSubstr("/discovery.conf:1: no traddr (-a)"));
  Write("discovery.conf", "-a 127.0.0.1 --tls\n");
  r = Cli({"--socket", "/nonexistent/sock", "connect-all"});
  EXPECT_EQ(r.rc, 1);  // the refused --tls on the line, before the daemon is asked
  EXPECT_THAT(r.err, HasSubstr("discovery.conf:1: --tls: TLS is supported on connect only"));
  // connect: --tls without its key, refused by the request's validation.
  ConnectArgs tls_only;
  tls_only.tls = true;
  EXPECT_THAT(control::TlsPskFor(tls_only).status().message(),
              HasSubstr("--tls needs the PSK: --tls-key"));
  // DH-HMAC-CHAP secrets on a line are checked there (and never echoed).
  Write("discovery.conf", "-a 127.0.0.1 -s 1 --dhchap-secret DHHC-1:00:xyzw:\n");
  auto bad = DiscoveryControllersFromFiles(FabricsOptions{});
  EXPECT_THAT(bad.status().message(), HasSubstr("discovery.conf:1: --dhchap-secret: bad"));
  EXPECT_THAT(bad.status().message(), testing::Not(HasSubstr("xyzw")));
  const std::string key = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
  Write("discovery.conf", "-a 127.0.0.1 -s 1 -S " + key + "\n");
  auto good = DiscoveryControllersFromFiles(FabricsOptions{});
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ((*good)[0].args.dhchap_secret, key);
  // config.json's keys, as libnvme reads them.
  unlink((dir_ + "/discovery.conf").c_str());
  Write("config.json", R"([{"hostnqn": "nqn.2014-08.org.nvmexpress:uuid:x", "dhchap_key": ")" +
                           key +
                           R"(", "subsystems": [{"nqn": "nqn.2014-08.org.nvmexpress.discovery",
                           "ports": [{"transport": "tcp", "traddr": "127.0.0.1",
                           "dhchap_ctrl_key": ")" +
                           key + R"("}]}]}])");
  good = DiscoveryControllersFromFiles(FabricsOptions{});
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ((*good)[0].args.dhchap_secret, key);
  EXPECT_EQ((*good)[0].args.dhchap_ctrl_secret, key);
  Write("config.json", R"([{"dhchap_key": "DHHC-1:00:xyzw:", "subsystems": [{"ports":
                           [{"transport": "tcp", "traddr": "127.0.0.1"}]}]}])");
  EXPECT_THAT(DiscoveryControllersFromFiles(FabricsOptions{}).status().message(),
              HasSubstr("config.json: hosts[0].subsystems[0].ports[0]: --dhchap-secret: bad"));
  unlink((dir_ + "/config.json").c_str());
}

TEST_F(FabricsCli, DiscoverFollowsReferralsInNvmeCliShapes) {
  uint16_t pa = 0, pb = 0;
  auto a = StartTarget("nqn.2026-01.io.test:a", &pa);
  auto b = StartTarget("nqn.2026-01.io.test:b", &pb);
  ASSERT_TRUE(a->AddReferral(target::ReferralConfig{"127.0.0.1", pb, 0}).ok());
  Result r = Cli({"discover", "-a", "127.0.0.1", "-s", std::to_string(pa), "-o", "json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["genctr"].is_number());
  ASSERT_EQ(j["records"].size(), 2u);  // the subsystem and the referral
  EXPECT_EQ(j["records"][0]["subtype"], "nvme subsystem");
  EXPECT_EQ(j["records"][0]["subnqn"], "nqn.2026-01.io.test:a");
  EXPECT_EQ(j["records"][0]["trtype"], "tcp");
  EXPECT_EQ(j["records"][0]["adrfam"], "ipv4");
  EXPECT_EQ(j["records"][0]["sectype"], "none");
  EXPECT_TRUE(j["records"][0]["portid"].is_number());
  ASSERT_EQ(j["referrals"].size(), 1u);
  EXPECT_EQ(j["referrals"][0]["trsvcid"], std::to_string(pb));
  EXPECT_EQ(j["referrals"][0]["records"][0]["subnqn"], "nqn.2026-01.io.test:b");

  // The same from discovery.conf, in the normal shape.
  Write("discovery.conf", "# the fabric\n-t tcp -a 127.0.0.1 -s " + std::to_string(pa) + "\n");
  r = Cli({"discover"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("\nDiscovery Log Number of Records 2, Generation counter "));
  EXPECT_THAT(r.out, HasSubstr("=====Discovery Log Entry 0======\ntrtype:  tcp\nadrfam:  ipv4\n"
                               "subtype: nvme subsystem\n"));
  EXPECT_THAT(r.out, HasSubstr("subnqn:  nqn.2026-01.io.test:b\n"));
  EXPECT_THAT(r.out, HasSubstr("Referred discovery controller 127.0.0.1:" + std::to_string(pb)));
}

TEST_F(FabricsCli, DhchapKeyCommandsAreNvmeClis) {
  // nvme-cli 2.3: nvme gen-dhchap-key --secret=00..1f --hmac=1 --nqn=<nqn>
  const std::string s32 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  Result r =
      Cli({"gen-dhchap-key", "-s", s32, "-m", "1", "-n", "nqn.2014-08.org.nvmexpress:uuid:test"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "DHHC-1:01:WulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:\n");
  r = Cli({"gen-dhchap-key", "-s", s32});
  EXPECT_EQ(r.out, "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:\n");
  // -m 2 without -l: a 48-byte key; the NQN from /etc/nvme/hostnqn.
  r = Cli({"gen-dhchap-key", "-m", "2"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("DHHC-1:02:"));
  EXPECT_EQ(r.out.size(), std::string("DHHC-1:02:").size() + 72 + 2);  // base64 of 52 bytes, ":\n"
  r = Cli({"check-dhchap-key", "-k", r.out.substr(0, r.out.size() - 1)});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("48-byte secret, transform sha384"));
  r = Cli(
      {"check-dhchap-key", "-k", "DHHC-1:01:XulleCBkG4oCs0iIC3Cit9gBDCLWiZ9PNXuhqytWkBIZkvGy:"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("CRC does not match"));
  r = Cli({"gen-dhchap-key", "-s", "xyz"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("hexadecimal"));
  EXPECT_EQ(Cli({"gen-dhchap-key", "-m", "4"}).rc, 2);
}

TEST_F(FabricsCli, TlsKeyCommandsMatchLibnvmesVectors) {
  const std::string k32 = "5512DBB6737D0106F65975B773DFB011FFC344BCF442E2DD6D8BC4870B5D5B03";
  Result r = Cli({"gen-tls-key", "-s", k32});
  EXPECT_EQ(r.out, "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:\n");
  const std::string key = r.out.substr(0, r.out.size() - 1);
  r = Cli({"check-tls-key", "-k", key, "-q", "nqn.psk-test-host", "-n", "nqn.psk-test-subsys", "-I",
           "1"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "NVMe1R01 nqn.psk-test-host nqn.psk-test-subsys "
            "iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU=\n");
  r = Cli({"check-tls-key", "-k", key, "-q", "nqn.psk-test-host", "-n", "nqn.psk-test-subsys",
           "--show-psk"});
  EXPECT_EQ(r.out,
            "NVMe0R01 nqn.psk-test-host nqn.psk-test-subsys\n"
            "05c6503551ad136e6ee32e6eeb3f6d500b69701d84ec71e328f65c7f51566f68\n");
  r = Cli({"check-tls-key", "-k", key});
  EXPECT_THAT(r.out, HasSubstr("valid TLS PSK: 32-byte key, transform sha256"));
  r = Cli(
      {"check-tls-key", "-k", "NVMeTLSkey-1:01:WRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("CRC does not match"));
  r = Cli({"gen-tls-key", "-m", "2"});
  EXPECT_THAT(r.out, StartsWith("NVMeTLSkey-1:02:"));
  EXPECT_EQ(r.out.size(), 89u + 1);  // libnvme's length for a 48-byte key
}

TEST_F(FabricsCli, HostNqnCommands) {
  Result r = Cli({"show-hostnqn"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555\n");
  unlink((dir_ + "/hostnqn").c_str());
  r = Cli({"show-hostnqn"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("gen-hostnqn"));
  r = Cli({"gen-hostnqn"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_THAT(r.out, StartsWith("nqn.2014-08.org.nvmexpress:uuid:"));
  EXPECT_EQ(r.out.size(), std::string("nqn.2014-08.org.nvmexpress:uuid:").size() + 36 + 1);
}

}  // namespace
}  // namespace nvmf_ublk::cli
