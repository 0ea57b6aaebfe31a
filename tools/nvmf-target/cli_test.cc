// Command line and control command parsing of nvmf-target.
#include "cli.h"

#include <string>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "target.h"

namespace nvmf_ublk::target {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(CliTest, Sizes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64K"), 64u << 10);
  EXPECT_EQ(*ParseSize("1g"), 1ull << 30);
  EXPECT_EQ(*ParseSize("2MiB"), 2u << 20);
  EXPECT_EQ(*ParseSize("3T"), 3ull << 40);
  EXPECT_THAT(ParseSize("1X"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1X")));
  EXPECT_FALSE(ParseSize("").ok());
  EXPECT_FALSE(ParseSize("K").ok());
  EXPECT_FALSE(ParseSize("99999999999T").ok());
}

TEST(CliTest, HostPort) {
  auto hp = ParseHostPort("127.0.0.1:4420");
  ASSERT_THAT(hp, IsOk());
  EXPECT_EQ(hp->first, "127.0.0.1");
  EXPECT_EQ(hp->second, 4420);
  hp = ParseHostPort("[::1]:0");
  ASSERT_THAT(hp, IsOk());
  EXPECT_EQ(hp->first, "::1");
  EXPECT_FALSE(ParseHostPort("localhost:4420").ok());
  EXPECT_FALSE(ParseHostPort("127.0.0.1").ok());
  EXPECT_FALSE(ParseHostPort("127.0.0.1:70000").ok());
  EXPECT_FALSE(ParseHostPort("::1:4420").ok());
}

TEST(CliTest, NamespaceSpecs) {
  auto ns = ParseNamespaceSpec("ram:1G:4096");
  ASSERT_THAT(ns, IsOk());
  EXPECT_EQ(ns->kind, BackendKind::kRam);
  EXPECT_EQ(ns->size_bytes, 1ull << 30);
  EXPECT_EQ(ns->block_size, 4096u);
  ns = ParseNamespaceSpec("file:/tmp/disk.img:512,size=64M,nsid=4,ana-group=2");
  ASSERT_THAT(ns, IsOk());
  EXPECT_EQ(ns->kind, BackendKind::kFile);
  EXPECT_EQ(ns->path, "/tmp/disk.img");
  EXPECT_EQ(ns->size_bytes, 64u << 20);
  EXPECT_EQ(ns->nsid, 4u);
  EXPECT_EQ(ns->ana_group, 2u);
  ns = ParseNamespaceSpec(
      "null:10G,nguid=00112233445566778899aabbccddeeff,"
      "uuid=01234567-89ab-cdef-0123-456789abcdef,eui64=0102030405060708");
  ASSERT_THAT(ns, IsOk());
  EXPECT_EQ(ns->kind, BackendKind::kNull);
  EXPECT_EQ((*ns->nguid)[15], 0xff);
  EXPECT_EQ((*ns->uuid)[0], 0x01);
  EXPECT_EQ((*ns->eui64)[7], 0x08);
  EXPECT_THAT(ParseNamespaceSpec("disk:1G"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown kind")));
  EXPECT_FALSE(ParseNamespaceSpec("ram:lots").ok());
  EXPECT_FALSE(ParseNamespaceSpec("ram:1G,colour=red").ok());
  EXPECT_FALSE(ParseNamespaceSpec("ram:1G,nguid=12").ok());
}

TEST(CliTest, FaultSpecs) {
  std::optional<PortRef> port;
  auto f = ParseFaultSpec("cut-after=100,delay=5,drop-every=3,port=4421", &port);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->cut_after, 100u);
  EXPECT_EQ(f->delay_ms, 5u);
  EXPECT_EQ(f->drop_every, 3u);
  ASSERT_TRUE(port.has_value());
  EXPECT_FALSE(port->by_index);
  EXPECT_EQ(port->value, 4421u);
  f = ParseFaultSpec("error=2,status=ana-transition,port=#1", &port);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->error_count, 2u);
  EXPECT_EQ(f->error_status, nvme::MakeStatus(nvme::kSctPath, nvme::kScAnaTransition));
  EXPECT_TRUE(port->by_index);
  f = ParseFaultSpec("cpda=3,maxh2cdata=4K,r2t-chunk=32K,max-r2t=4,admin=1,term-req=1", &port);
  ASSERT_THAT(f, IsOk());
  EXPECT_FALSE(port.has_value());
  EXPECT_EQ(*f->cpda, 3);
  EXPECT_EQ(*f->maxh2cdata, 4096u);
  EXPECT_EQ(*f->r2t_chunk, 32768u);
  EXPECT_EQ(*f->max_r2t, 4u);
  EXPECT_TRUE(f->admin);
  EXPECT_EQ(f->term_req, 1u);
  f = ParseFaultSpec("malice=r2t-reused-ttag,malice-after=5,malice-times=0", &port);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->malice, Malice::kR2TReusedTtag);
  EXPECT_EQ(f->malice_after, 5u);
  EXPECT_EQ(f->malice_times, 0u);
  EXPECT_FALSE(f->empty());
  EXPECT_THAT(ParseFaultSpec("malice=be-evil", &port),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("icresp-maxh2cdata-small")));
  // Every kind has a distinct name that parses back to it, and --help lists it.
  const std::string usage = UsageText();
  for (Malice m : AllMalice()) {
    EXPECT_EQ(ParseMalice(ToString(m)), m) << ToString(m);
    const std::string name = ToString(m);
    EXPECT_TRUE(usage.find(" " + name + " ") != std::string::npos ||
                usage.find(" " + name + "\n") != std::string::npos)
        << ToString(m) << " is not in --help";
  }
  EXPECT_TRUE(ParseFaultSpec("clear", &port)->empty());
  EXPECT_THAT(ParseFaultSpec("explode=1", &port),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown fault 'explode'")));
  EXPECT_FALSE(ParseFaultSpec("delay", &port).ok());
  EXPECT_FALSE(ParseFaultSpec("cpda=32", &port).ok());
  EXPECT_FALSE(ParseFaultSpec("maxh2cdata=1000", &port).ok());
  EXPECT_EQ(*ParseStatusName("1:0x82:dnr"), nvme::MakeStatus(1, 0x82, true));
  EXPECT_EQ(*ParseStatusName("dnr"), nvme::MakeStatus(0, nvme::kScInternalError, true));
  EXPECT_FALSE(ParseStatusName("0:0").ok());
  EXPECT_FALSE(ParseStatusName("bad").ok());
}

TEST(CliTest, CommandLine) {
  auto o = ParseCommandLine({"--listen",
                             "127.0.0.1:4420",
                             "--listen=[::1]:0",
                             "--subsystem",
                             "nqn.2026-01.io.nvmf-ublk:demo",
                             "--ns",
                             "ram:1G",
                             "--ns",
                             "null:10G:4096",
                             "--host",
                             "nqn.2014-08.org.nvmexpress:uuid:x",
                             "--subsys-port",
                             "0",
                             "--subsystem",
                             "nqn.2026-01.io.nvmf-ublk:two",
                             "--ns",
                             "ram:16M",
                             "--referral",
                             "10.0.0.2:4420,portid=9",
                             "--cpda",
                             "2",
                             "--maxh2cdata",
                             "8K",
                             "--r2t-chunk",
                             "32K",
                             "--fault",
                             "cut-after=100",
                             "--fault",
                             "port=#1,delay=10",
                             "--ana",
                             "4420:1:inaccessible",
                             "--control",
                             "-",
                             "-v"});
  ASSERT_THAT(o, IsOk());
  const TargetConfig& c = o->config;
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[1].address, "::1");
  ASSERT_EQ(c.subsystems.size(), 2u);
  EXPECT_EQ(c.subsystems[0].namespaces.size(), 2u);
  EXPECT_EQ(c.subsystems[0].namespaces[1].block_size, 4096u);
  EXPECT_EQ(c.subsystems[0].allowed_hosts.size(), 1u);
  EXPECT_EQ(c.subsystems[0].ports, std::vector<size_t>{0});
  EXPECT_EQ(c.subsystems[1].namespaces[0].size_bytes, 16u << 20);
  ASSERT_EQ(c.referrals.size(), 1u);
  EXPECT_EQ(c.referrals[0].port_id, 9);
  EXPECT_EQ(c.transport.cpda, 2);
  EXPECT_EQ(c.transport.maxh2cdata, 8192u);
  EXPECT_EQ(c.transport.r2t_chunk, 32768u);
  EXPECT_EQ(c.fault.cut_after, 100u);
  ASSERT_EQ(o->port_faults.size(), 1u);
  EXPECT_EQ(o->port_faults[0].second.delay_ms, 10u);
  EXPECT_EQ(c.ports[0].ana_states.at(1), AnaState::kInaccessible);
  EXPECT_EQ(o->control, "-");
  EXPECT_EQ(o->log_level, LogLevel::kDebug);

  auto d = ParseCommandLine({"--ns", "ram:1M"});
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->config.subsystems[0].nqn, kDefaultNqn);
  ASSERT_EQ(d->config.ports.size(), 1u);
  EXPECT_EQ(d->config.ports[0].port, 4420);

  EXPECT_THAT(ParseCommandLine({"--bogus"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("not expected: --bogus"), HasSubstr("see --help"))));
  EXPECT_THAT(ParseCommandLine({"--listen"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--listen")));
  EXPECT_THAT(ParseCommandLine({"--subsystem", "iqn.bad"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nqn.")));
  EXPECT_THAT(ParseCommandLine({"--cpda", "40"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::StartsWith("--cpda: 40 is above the limit 31")));
  EXPECT_THAT(ParseCommandLine({"--ns", "ram:1M", "extra"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not expected: extra")));
  EXPECT_THAT(ParseCommandLine({"--serial", std::string(21, 'x')}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--serial: at most 20")));
  // "-" is a value (stdin), and --flag=value works as --flag value.
  EXPECT_EQ(ParseCommandLine({"--control", "-"})->control, "-");
  EXPECT_EQ(ParseCommandLine({"--queue-size=64"})->config.queue_size, 64u);
  EXPECT_THAT(ParseCommandLine({"--maxh2cdata", "1K"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("MAXH2CDATA")));
  EXPECT_THAT(ParseCommandLine({"--fault", "delay=x"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--fault")));
  EXPECT_THAT(ParseCommandLine({"--ana", "4999:1:optimized"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no --listen")));
  EXPECT_THAT(ParseCommandLine({"--ana", "4420:1:sideways"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ANA state")));
  EXPECT_TRUE(ParseCommandLine({"--help"})->help);
  EXPECT_THAT(UsageText(), HasSubstr("--listen ADDR:PORT"));
}

TEST(CliTest, HostKey) {
  const std::string key = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
  auto o = ParseCommandLine({"--subsystem", "nqn.2026-01.io.test:a", "--ns", "ram:1M", "--host-key",
                             "nqn.2026-01.io.test:h,key=" + key + ",ctrl-key=" + key +
                                 ",hash=sha512:sha256,dhgroup=ffdhe8192:null"});
  ASSERT_THAT(o, IsOk());
  ASSERT_EQ(o->config.subsystems[0].host_auth.size(), 1u);
  const HostAuthConfig& h = o->config.subsystems[0].host_auth[0];
  EXPECT_EQ(h.hostnqn, "nqn.2026-01.io.test:h");
  EXPECT_EQ(h.key, key);
  EXPECT_EQ(h.ctrl_key, key);
  EXPECT_EQ(h.hashes, (std::vector<uint8_t>{3, 1}));
  EXPECT_EQ(h.dhgroups, (std::vector<uint8_t>{5, 0}));
  EXPECT_THAT(ParseCommandLine({"--host-key", "nqn.2026-01.io.test:h"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key=DHHC-1")));
  EXPECT_THAT(ParseCommandLine({"--host-key", "nqn.2026-01.io.test:h,key=x,hash=md5"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown hash 'md5'")));
}

TEST(CliTest, ControlCommands) {
  TargetConfig c;
  c.ports.push_back(PortConfig{});
  SubsystemConfig s;
  s.nqn = "nqn.2026-01.io.nvmf-ublk:ctl";
  NamespaceConfig ns;
  ns.size_bytes = 1 << 20;
  s.namespaces = {ns};
  c.subsystems.push_back(s);
  Target target(c);
  auto ports = target.Start();
  ASSERT_THAT(ports, IsOk());
  const std::string port = std::to_string((*ports)[0]);
  bool quit = false;
  EXPECT_THAT(RunControlCommand(target, "ana " + port + " 1 inaccessible", &quit), IsOk());
  EXPECT_EQ(target.GetAnaState(0, 1), AnaState::kInaccessible);
  EXPECT_THAT(RunControlCommand(target, "ana #0 1 optimized", &quit), IsOk());
  EXPECT_EQ(target.GetAnaState(0, 1), AnaState::kOptimized);
  EXPECT_THAT(RunControlCommand(target, "fault port=" + port + ",delay=5", &quit), IsOk());
  EXPECT_THAT(RunControlCommand(target, "fault clear", &quit), IsOk());
  const uint64_t gen = target.discovery_generation();
  EXPECT_THAT(RunControlCommand(target, "referral add 10.1.1.1:8009", &quit), IsOk());
  EXPECT_EQ(target.discovery_generation(), gen + 1);
  EXPECT_THAT(RunControlCommand(target, "referral del 10.1.1.1:8009", &quit), IsOk());
  EXPECT_FALSE(RunControlCommand(target, "referral del 10.1.1.1:8009", &quit).ok());
  auto status = RunControlCommand(target, "status", &quit);
  ASSERT_THAT(status, IsOk());
  EXPECT_THAT(*status, HasSubstr("namespace nqn.2026-01.io.nvmf-ublk:ctl 1"));
  EXPECT_THAT(*status, HasSubstr("transport accepted 0 capsules 0 term-reqs 0 malice 0 "
                                 "host-term-reqs 0 last-host-fes 0"));
  EXPECT_THAT(RunControlCommand(target, "ana 1 1 optimized", &quit),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no port 1")));
  EXPECT_THAT(RunControlCommand(target, "ana #0 1 weird", &quit),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RunControlCommand(target, "frobnicate", &quit),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown command")));
  EXPECT_THAT(RunControlCommand(target, "  # comment", &quit), IsOk());
  EXPECT_FALSE(quit);
  EXPECT_THAT(RunControlCommand(target, "quit", &quit), IsOk());
  EXPECT_TRUE(quit);
}

}  // namespace
}  // namespace nvmf_ublk::target
