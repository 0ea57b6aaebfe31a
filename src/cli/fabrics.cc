#include "cli/fabrics.h"

#include <algorithm>
#include <iomanip>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "auth/dhchap_key.h"
#include "auth/tls_psk.h"
#include "base/status.h"
#include "control/protocol.h"
#include "discovery/config_file.h"
#include "discovery/discover.h"
#include "discovery/host_identity.h"
#include "io/engine.h"
#include "nlohmann/json.hpp"
#include "nvme/log_pages.h"
#include "nvme/spec.h"

namespace nvmf_ublk::cli {
namespace {

using nlohmann::json;

// libnvme's nvmf_treq_str / nvmf_eflags_str / nvmf_sectype_str wording.
const char* TreqText(uint8_t treq) {
  switch (treq) {  // the whole byte, as libnvme 1.3 indexes it
    case 0:
      return "not specified";
    case 1:
      return "required";
    case 2:
      return "not required";
    case 4:
      return "not specified, sq flow control disable supported";
  }
  return "unrecognized";
}

std::string EflagsText(uint16_t eflags) {
  std::vector<std::string> parts;
  if (eflags & 0x2) parts.push_back("explicit discovery connections");
  if (eflags & 0x1) parts.push_back("duplicate discovery information");
  if (eflags & 0x4) parts.push_back("no cdc connectivity");
  return parts.empty() ? "none" : absl::StrJoin(parts, ", ");
}

const char* SubtypeText(uint8_t subtype) {
  switch (subtype) {
    case 1:
      return "discovery subsystem referral";
    case 2:
      return "nvme subsystem";
    case 3:
      return "current discovery subsystem";
  }
  return "unrecognized";
}

const char* SectypeText(uint8_t sectype) {
  switch (sectype) {
    case 0:
      return "none";
    case 1:
      return "tls";
    case 2:
      return "tls13";
  }
  return "reserved";
}

json RecordJson(const nvme::DiscoveryEntry& e) {
  return json{{"trtype", nvme::TrtypeName(e.trtype)},
              {"adrfam", e.traddr.empty() ? "" : nvme::AdrfamName(e.adrfam)},
              {"subtype", SubtypeText(e.subtype)},
              {"treq", TreqText(e.treq)},
              {"portid", e.portid},
              {"trsvcid", e.trsvcid},
              {"subnqn", e.subnqn},
              {"traddr", e.traddr},
              {"eflags", EflagsText(e.eflags)},
              {"sectype", SectypeText(e.tcp_sectype)}};
}

void PrintLog(const discovery::DiscoveryLogResult& l, std::ostream& out) {
  out << "\nDiscovery Log Number of Records " << l.entries.size() << ", Generation counter "
      << l.genctr << "\n";
  for (size_t i = 0; i < l.entries.size(); ++i) {
    const auto& e = l.entries[i];
    out << "=====Discovery Log Entry " << i << "======\n"
        << "trtype:  " << nvme::TrtypeName(e.trtype) << "\n"
        << "adrfam:  " << (e.traddr.empty() ? "" : nvme::AdrfamName(e.adrfam)) << "\n"
        << "subtype: " << SubtypeText(e.subtype) << "\n"
        << "treq:    " << TreqText(e.treq) << "\n"
        << "portid:  " << e.portid << "\n"
        << "trsvcid: " << e.trsvcid << "\n"
        << "subnqn:  " << e.subnqn << "\n"
        << "traddr:  " << e.traddr << "\n"
        << "eflags:  " << EflagsText(e.eflags) << "\n"
        << "sectype: " << SectypeText(e.tcp_sectype) << "\n";
  }
}

int Fail(std::ostream& err, const absl::Status& s) {
  err << "nvmf-ublk: " << s.message() << "\n";
  return 1;
}

}  // namespace

void AddFabricsOptions(CLI::App* app, FabricsOptions* o, Verb verb) {
  ConnectArgs& a = o->args;
  app->add_option("-t,--transport", a.transport, "transport type (tcp)")
      ->check(CLI::IsMember({"tcp"}));
  auto* traddr = app->add_option("-a,--traddr", a.traddr, "transport address (IPv4/IPv6 or name)");
  if (verb == Verb::kConnect) traddr->required();
  app->add_option("-s,--trsvcid", a.trsvcid,
                  verb == Verb::kConnect ? "transport service id (default 4420)"
                                         : "transport service id (default 8009)");
  app->add_option("-w,--host-traddr", a.host_traddr, "source address for the connections");
  app->add_option("-f,--host-iface", a.host_iface, "network interface for the connections");
  app->add_option("-q,--hostnqn", a.hostnqn, "host NQN (default: /etc/nvme/hostnqn)");
  app->add_option("-I,--hostid", a.hostid, "host ID, a UUID (default: /etc/nvme/hostid)");
  app->add_option("-k,--keep-alive-tmo", a.keep_alive_tmo,
                  "keep-alive timeout (s; default 5, 30 for discovery controllers)")
      ->each([o](const std::string&) { o->keep_alive_given = true; });
  app->add_option("-c,--reconnect-delay", a.reconnect_delay, "reconnect delay (s)")
      ->capture_default_str();
  app->add_option("-l,--ctrl-loss-tmo", a.ctrl_loss_tmo, "controller loss timeout (s, -1: forever)")
      ->capture_default_str();
  app->add_option("--fast_io_fail_tmo,--fast-io-fail-tmo", a.fast_io_fail_tmo,
                  "fail queued I/O after this many seconds (-1: off)");
  app->add_option("-T,--tos", a.tos, "IP type of service of the TCP connections (0-255)")
      ->check(CLI::Range(0, 255));
  app->add_flag("-g,--hdr-digest", a.hdr_digest, "enable the header digest");
  app->add_flag("-G,--data-digest", a.data_digest, "enable the data digest");
  app->add_option("-o,--output-format", o->output, "normal|json")
      ->check(CLI::IsMember({"normal", "json"}));
  // Options nvme-cli has that need the kernel's host or what nvmf-ublk does not do yet.
  auto refuse = [app, o](const std::string& flags, const std::string& why, bool takes_value) {
    auto record = [o, flags, why](const auto&) {
      const std::string name =
          flags.substr(flags.rfind(',') == std::string::npos ? 0 : flags.rfind(',') + 1);
      o->refused.push_back(absl::StrCat("--", name.substr(name.find_first_not_of('-')), ": ", why));
    };
    if (takes_value) {
      app->add_option_function<std::string>(flags, record, "not supported: " + why)
          ->group("Refused (nvme-cli options nvmf-ublk does not support)");
    } else {
      app->add_flag_function(flags, record, "not supported: " + why)
          ->group("Refused (nvme-cli options nvmf-ublk does not support)");
    }
  };
  app->add_option("-S,--dhchap-secret", a.dhchap_secret,
                  "the host's DH-HMAC-CHAP secret (DHHC-1:hh:base64:, as from gen-dhchap-key)");
  // A secret in a file stays out of the process list and shell history.
  auto secret_file = [o](std::string* dest, const char* flag) {
    return [o, dest, flag](const std::string& path) {
      auto text = auth::ReadSecretFile(path);
      if (text.ok()) {
        *dest = *text;
      } else {
        o->refused.push_back(absl::StrCat(flag, ": ", text.status().message()));
      }
    };
  };
  app->add_option_function<std::string>(
      "--dhchap-secret-file", secret_file(&a.dhchap_secret, "--dhchap-secret-file"),
      "read --dhchap-secret from this file (its first line; mode 0600 or stricter)");
  if (verb == Verb::kConnect) {
    app->add_flag("--tls", a.tls,
                  "TLS 1.3 with the PSK of --tls-key (kernel TLS carries the data)");
    app->add_option("--tls-key,--tls_key", a.tls_key,
                    "the configured TLS PSK, NVMeTLSkey-1:hh:base64: (as from gen-tls-key)");
    app->add_option_function<std::string>("--tls-key-file",
                                          secret_file(&a.tls_key, "--tls-key-file"),
                                          "read --tls-key from this file (mode 0600 or stricter)");
  } else {
    refuse("--tls", "TLS is supported on connect only so far (not for discovery controllers)",
           false);
    refuse("--tls_key,--tls-key", "TLS is supported on connect only so far", true);
  }
  refuse("--keyring", "the kernel keyring is not read: give the PSK with --tls-key", true);
  refuse("-r,--raw", "the raw discovery log is not written; use -o json", true);
  refuse("--nbft", "NVMe/TCP boot firmware tables are not read", false);
  refuse("-J,--config", "config.json is read from /etc/nvme only", true);
  refuse("-O,--dump-config", "the configuration is not written back", false);
  if (verb != Verb::kConnect) {
    app->add_flag("--quiet", o->quiet,
                  "no notes (skipped records, saved host identity), errors only");
    app->add_flag("-v,--verbose", o->verbose, "say what happened to each record");
    refuse("-d,--device",
           "names a kernel discovery controller (/dev/nvmeN); nvmf-ublk keeps its own "
           "(connect-all --persistent, listed by `nvmf-ublk list`)",
           true);
    refuse("-n,--nqn", "only the well-known discovery subsystem NQN is used", true);
  }
  if (verb == Verb::kDiscover) {
    refuse("-p,--persistent",
           "a persistent discovery controller connects its records: use connect-all --persistent",
           false);
    return;
  }
  app->add_option("-i,--nr-io-queues", a.nr_io_queues, "I/O queues (default: one per core)");
  app->add_option("-Q,--queue-size", a.queue_size, "I/O queue size")->capture_default_str();
  app->add_flag("-D,--duplicate-connect", a.duplicate_connect,
                "connect even when this subsystem is connected through this portal already");
  app->add_flag("--disable-sqflow", a.disable_sqflow,
                "ask the controller to disable SQ flow control");
  app->add_option("--owner,--context", a.owner,
                  "tag the connections (disconnect-all --owner removes only those; nvme-cli's "
                  "--context)");
  app->add_option("-C,--dhchap-ctrl-secret", a.dhchap_ctrl_secret,
                  "the controller's DH-HMAC-CHAP secret: the controller must prove it holds it "
                  "(bidirectional authentication)");
  app->add_option_function<std::string>(
      "--dhchap-ctrl-secret-file", secret_file(&a.dhchap_ctrl_secret, "--dhchap-ctrl-secret-file"),
      "read --dhchap-ctrl-secret from this file (mode 0600 or stricter)");
  refuse("-W,--nr-write-queues", "ublk queues carry reads and writes alike (no write queues)",
         true);
  refuse("-P,--nr-poll-queues", "no polled queues (see nvmf-ublkd)", true);
  refuse("--concat", "secure channel concatenation is not supported", false);
  if (verb == Verb::kConnectAll) {
    app->add_flag("-p,--persistent", o->persistent,
                  "keep the discovery controller: connect records that appear, disconnect the "
                  "ones it connected that leave the log (after --grace-period)");
  }
}

std::string RefusedMessage(const FabricsOptions& o) {
  return o.refused.empty() ? std::string() : o.refused.front();
}

absl::StatusOr<FabricsOptions> ParseConfLine(const std::vector<std::string>& args,
                                             const std::string& where) {
  CLI::App app{"discovery.conf line", "discovery.conf"};
  FabricsOptions o;
  AddFabricsOptions(&app, &o, Verb::kConnectAll);
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what()));
  }
  if (!o.refused.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", o.refused.front()));
  }
  if (o.args.traddr.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": no traddr (-a)"));
  }
  if (absl::Status s = control::DhchapConfigFor(o.args).status(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
  }
  if (absl::Status s = control::TlsPskFor(o.args).status(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
  }
  return o;
}

absl::StatusOr<std::vector<FabricsOptions>> DiscoveryControllersFromFiles(
    const FabricsOptions& cmd) {
  std::vector<FabricsOptions> out;
  const std::string dir = discovery::NvmeConfigDir();
  const std::string conf = dir + "/discovery.conf";
  auto text = discovery::ReadTextFile(conf);
  if (text.ok()) {
    ASSIGN_OR_RETURN(auto lines, discovery::SplitConfLines(*text, conf));
    for (const auto& l : lines) {
      ASSIGN_OR_RETURN(FabricsOptions o, ParseConfLine(l.args, absl::StrCat(conf, ":", l.line)));
      // The command line's connect options apply where the file line says nothing.
      FabricsOptions merged = cmd;
      merged.args.traddr = o.args.traddr;
      merged.args.trsvcid = o.args.trsvcid;
      if (!o.args.host_traddr.empty()) merged.args.host_traddr = o.args.host_traddr;
      if (!o.args.host_iface.empty()) merged.args.host_iface = o.args.host_iface;
      if (!o.args.hostnqn.empty()) merged.args.hostnqn = o.args.hostnqn;
      if (!o.args.hostid.empty()) merged.args.hostid = o.args.hostid;
      if (o.keep_alive_given) merged.args.keep_alive_tmo = o.args.keep_alive_tmo;
      if (!o.args.dhchap_secret.empty()) merged.args.dhchap_secret = o.args.dhchap_secret;
      if (!o.args.tls_key.empty()) merged.args.tls_key = o.args.tls_key;
      merged.args.tls |= o.args.tls;
      if (!o.args.dhchap_ctrl_secret.empty()) {
        merged.args.dhchap_ctrl_secret = o.args.dhchap_ctrl_secret;
      }
      merged.args.hdr_digest |= o.args.hdr_digest;
      merged.args.data_digest |= o.args.data_digest;
      merged.persistent |= o.persistent;
      out.push_back(std::move(merged));
    }
  } else if (text.status().code() != absl::StatusCode::kNotFound) {
    return text.status();
  }
  const std::string cfg = dir + "/config.json";
  auto jtext = discovery::ReadTextFile(cfg);
  if (jtext.ok()) {
    ASSIGN_OR_RETURN(auto ports, discovery::ParseJsonConfig(*jtext, cfg));
    for (const auto& p : ports) {
      if (!p.discovery) continue;
      FabricsOptions merged = cmd;
      merged.args.traddr = p.traddr;
      merged.args.trsvcid = p.trsvcid;
      merged.args.host_traddr = p.host_traddr;
      merged.args.host_iface = p.host_iface;
      if (!p.hostnqn.empty()) merged.args.hostnqn = p.hostnqn;
      if (!p.hostid.empty()) merged.args.hostid = p.hostid;
      if (p.keep_alive_tmo >= 0) merged.args.keep_alive_tmo = p.keep_alive_tmo;
      if (p.persistent == 1) merged.persistent = true;
      if (!p.dhchap_key.empty()) merged.args.dhchap_secret = p.dhchap_key;
      if (!p.dhchap_ctrl_key.empty()) merged.args.dhchap_ctrl_secret = p.dhchap_ctrl_key;
      if (absl::Status s = control::DhchapConfigFor(merged.args).status(); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(p.where, ": ", s.message()));
      }
      out.push_back(std::move(merged));
    }
  } else if (jtext.status().code() != absl::StatusCode::kNotFound) {
    return jtext.status();
  }
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no discovery controller: give -a/--traddr, or list "
                     "one per line in ",
                     conf, " (e.g. \"-t tcp -a 192.168.1.10 -s 8009\")"));
  }
  return out;
}

// The command line's discovery controller, or (no -a) the files'.
absl::StatusOr<std::vector<FabricsOptions>> DiscoveryControllersFor(const FabricsOptions& cmd) {
  if (cmd.args.traddr.empty()) return DiscoveryControllersFromFiles(cmd);
  return std::vector<FabricsOptions>{cmd};
}

absl::Status ResolveAndSaveHostIdentity(ConnectArgs* args, std::ostream& err) {
  ASSIGN_OR_RETURN(auto id, discovery::ResolveHostIdentity(args->hostnqn, args->hostid));
  args->hostnqn = id.hostnqn;
  args->hostid = id.hostid;
  if (id.nqn_generated || id.id_generated) {
    auto saved = discovery::SaveGeneratedIdentity(id);
    if (saved.ok()) {
      for (const auto& f : *saved) err << "nvmf-ublk: note: host identity saved to " << f << "\n";
    } else {
      err << "nvmf-ublk: note: using host NQN " << id.hostnqn << " (host ID " << id.hostid
          << "), which could not be saved: " << saved.status().message() << "\n";
    }
  }
  return absl::OkStatus();
}

int RunDiscover(const FabricsOptions& cmd, std::ostream& out, std::ostream& err) {
  if (!cmd.refused.empty()) return Fail(err, absl::InvalidArgumentError(RefusedMessage(cmd)));
  auto targets_or = DiscoveryControllersFor(cmd);
  if (!targets_or.ok()) return Fail(err, targets_or.status());
  std::vector<FabricsOptions>& targets = *targets_or;
  auto engine = io::Engine::Create(1);
  if (!engine.ok()) return Fail(err, engine.status());
  int rc = 0;
  json all = json::array();
  for (const FabricsOptions& t : targets) {
    auto id = discovery::ResolveHostIdentity(t.args.hostnqn, t.args.hostid);
    if (!id.ok()) return Fail(err, id.status());
    io::ControllerOptions opts;
    opts.traddr = t.args.traddr;
    opts.trsvcid = t.args.trsvcid.empty() ? "8009" : t.args.trsvcid;  // IANA's discovery port
    opts.host_traddr = t.args.host_traddr;
    opts.host_iface = t.args.host_iface;
    opts.hostnqn = id->hostnqn;
    opts.hostid = id->hostid_bytes;
    opts.hdr_digest = t.args.hdr_digest;
    opts.data_digest = t.args.data_digest;
    opts.tos = t.args.tos;
    auto dhchap = control::DhchapConfigFor(t.args);
    if (!dhchap.ok()) return Fail(err, dhchap.status());
    opts.dhchap = *dhchap;
    auto tls = control::TlsPskFor(t.args);
    if (!tls.ok()) return Fail(err, tls.status());
    opts.tls_psk = *tls;
    auto logs = discovery::DiscoverWithReferrals(engine->get(), opts);
    if (!logs.ok()) {
      err << "nvmf-ublk: discover " << opts.traddr << ":" << opts.trsvcid << ": "
          << logs.status().message() << "\n";
      rc = 1;
      continue;
    }
    // The first controller's log in nvme-cli's shape; the referred controllers' after it.
    json j;
    for (const auto& l : *logs) {
      if (!l.status.ok()) {
        err << "nvmf-ublk: referral " << l.traddr << ":" << l.trsvcid << ": " << l.status.message()
            << "\n";
        rc = 1;
      }
      json records = json::array();
      for (const auto& e : l.entries) records.push_back(RecordJson(e));
      if (l.depth == 0) {
        j = json{{"genctr", l.genctr}, {"records", records}, {"referrals", json::array()}};
      } else if (l.status.ok()) {
        j["referrals"].push_back(json{{"traddr", l.traddr},
                                      {"trsvcid", l.trsvcid},
                                      {"genctr", l.genctr},
                                      {"records", records}});
      }
      if (cmd.output != "json" && l.status.ok()) {
        if (l.depth > 0) out << "\nReferred discovery controller " << l.traddr << ":" << l.trsvcid;
        PrintLog(l, out);
      }
    }
    all.push_back(std::move(j));
  }
  if (cmd.output == "json") out << (all.size() == 1 ? all[0] : all).dump(2) << "\n";
  return rc;
}

int RunConnectAll(ControlClient* client, const FabricsOptions& cmd, int grace_s, std::ostream& out,
                  std::ostream& err) {
  if (!cmd.refused.empty()) return Fail(err, absl::InvalidArgumentError(RefusedMessage(cmd)));
  std::ostream null_stream(nullptr);
  std::ostream& note = cmd.quiet ? null_stream : err;
  auto targets_or = DiscoveryControllersFor(cmd);
  if (!targets_or.ok()) return Fail(err, targets_or.status());
  std::vector<FabricsOptions>& targets = *targets_or;
  int rc = 0;
  json j = json::array();
  std::set<std::string> printed;
  for (FabricsOptions t : targets) {
    if (absl::Status s = ResolveAndSaveHostIdentity(&t.args, note); !s.ok()) return Fail(err, s);
    ConnectAllArgs req;
    req.args = t.args;
    if (req.args.trsvcid.empty()) req.args.trsvcid = "8009";
    if (!t.keep_alive_given) req.args.keep_alive_tmo = -1;
    req.persistent = t.persistent;
    req.grace_s = grace_s;
    auto r = client->ConnectAll(req);
    if (!r.ok()) {
      err << "nvmf-ublk: connect-all " << req.args.traddr << ":" << req.args.trsvcid << ": "
          << r.status().message() << "\n";
      rc = 1;
      continue;
    }
    for (const auto& e : r->controller_errors) {
      err << "nvmf-ublk: discovery controller " << e << "\n";
    }
    for (const auto& rec : r->records) {
      if (rec.result == "failed") {
        err << "nvmf-ublk: " << rec.subnqn << " at " << rec.traddr << ":" << rec.trsvcid << ": "
            << rec.error << "\n";
        rc = 1;
      } else if (rec.result == "skipped") {
        note << "nvmf-ublk: skipped " << rec.error << "\n";
      } else if (cmd.verbose) {
        note << "nvmf-ublk: " << rec.result << " " << rec.subnqn << " at " << rec.traddr << ":"
             << rec.trsvcid << (rec.devices.empty() ? "" : ": ") << absl::StrJoin(rec.devices, " ")
             << "\n";
      }
    }
    if (cmd.output == "json") {
      j.push_back(control::ToJson(*r));
    } else {
      for (const auto& d : r->devices) {
        if (printed.insert(d.path).second) out << d.path << "\n";
      }
    }
    if (!r->discovery_id.empty()) {
      note << "nvmf-ublk: persistent discovery controller " << r->discovery_id
           << (req.args.owner.empty()
                   ? " (disconnect-all removes it)"
                   : " (disconnect-all --owner " + req.args.owner + " removes it)")
           << "\n";
    }
  }
  if (cmd.output == "json") out << (j.size() == 1 ? j[0] : j).dump(2) << "\n";
  return rc;
}

void PrintDiscoveryControllers(const std::vector<DiscoveryControllerInfo>& dcs, std::ostream& out) {
  for (const auto& d : dcs) {
    out << "discovery controller " << d.id << " " << d.state << " (generation " << d.genctr
        << ", grace " << d.grace_s << " s" << (d.owner.empty() ? "" : ", owner " + d.owner) << ")"
        << (d.error.empty() ? "" : ": " + d.error) << "\n";
    for (const auto& r : d.records) {
      out << "  " << r.subnqn << " at " << r.traddr << ":" << r.trsvcid << " " << r.state;
      if (r.failures > 0) {
        out << " (" << r.failures << " failed attempt(s): " << r.error << "; next in "
            << static_cast<int>(r.retry_in_s + 0.5) << " s)";
      }
      if (r.state == "vanishing") {
        out << " (left the log " << static_cast<int>(r.vanishing_for_s) << " s ago)";
      }
      out << "\n";
    }
  }
}

int RunListSubsys(ControlClient* client, const std::string& output, std::ostream& out,
                  std::ostream& err) {
  auto ctrls = client->List();
  if (!ctrls.ok()) return Fail(err, ctrls.status());
  auto dcs = client->ListDiscovery();
  if (!dcs.ok()) return Fail(err, dcs.status());
  std::vector<std::string> nqns;
  for (const auto& c : *ctrls) {
    if (std::find(nqns.begin(), nqns.end(), c.subnqn) == nqns.end()) nqns.push_back(c.subnqn);
  }
  if (output == "json") {
    json subs = json::array();
    for (const auto& nqn : nqns) {
      json paths = json::array();
      for (const auto& c : *ctrls) {
        if (c.subnqn != nqn) continue;
        json devs = json::array();
        for (const auto& d : c.devices) devs.push_back(d.path);
        paths.push_back(json{{"Name", c.name},
                             {"Transport", "tcp"},
                             {"Address", absl::StrCat("traddr=", c.traddr, ",trsvcid=", c.trsvcid)},
                             {"State", c.state},
                             {"Devices", devs}});
      }
      subs.push_back(json{{"Name", nqn}, {"NQN", nqn}, {"Paths", paths}});
    }
    json d = json::array();
    for (const auto& x : *dcs) d.push_back(control::ToJson(x));
    out << json{{"Subsystems", subs}, {"DiscoveryControllers", d}}.dump(2) << "\n";
    return 0;
  }
  for (const auto& nqn : nqns) {
    out << nqn << "\n\\\n";
    for (const auto& c : *ctrls) {
      if (c.subnqn != nqn) continue;
      out << " +- " << c.name << " tcp traddr=" << c.traddr << ",trsvcid=" << c.trsvcid << " "
          << c.state;
      std::vector<std::string> devs;
      for (const auto& d : c.devices) devs.push_back(d.path);
      if (!devs.empty()) out << " " << absl::StrJoin(devs, " ");
      out << "\n";
    }
  }
  PrintDiscoveryControllers(*dcs, out);
  return 0;
}

int RunGenHostNqn(std::ostream& out) {
  out << discovery::GenerateHostNqn() << "\n";
  return 0;
}

namespace {

// --secret of gen-dhchap-key / gen-tls-key: hexadecimal, two digits per byte ("" = none).
bool HexSecret(const std::string& hex, auth::Bytes* out, std::ostream& err) {
  if (hex.empty()) return true;
  if (hex.size() % 2 != 0 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    err << "nvmf-ublk: --secret must be hexadecimal digits, two per byte\n";
    return false;
  }
  std::string raw = absl::HexStringToBytes(absl::string_view(hex.data(), hex.size()));
  out->assign(raw.begin(), raw.end());
  std::fill(raw.begin(), raw.end(), '\0');
  return true;
}

}  // namespace

int RunGenDhchapKey(const std::string& secret_hex, int length, int hmac, const std::string& nqn,
                    std::ostream& out, std::ostream& err) {
  const auto hash = static_cast<auth::HashId>(hmac);
  std::string use_nqn = nqn;
  if (hmac != 0 && use_nqn.empty()) {
    auto id = discovery::ResolveHostIdentity("", "");
    if (!id.ok() || id->nqn_generated) {
      err << "nvmf-ublk: a transformed key (--hmac " << hmac << ") is bound to a host NQN: give "
          << "-n/--nqn, or create " << discovery::NvmeConfigDir() << "/hostnqn\n";
      return 1;
    }
    use_nqn = id->hostnqn;
  }
  auth::Bytes secret;
  if (!HexSecret(secret_hex, &secret, err)) return 1;
  size_t len = length > 0        ? static_cast<size_t>(length)
               : !secret.empty() ? secret.size()
               : hmac != 0       ? auth::HashLength(hash)
                                 : 32;
  auto key = auth::GenerateDhchapKey(hash, len, std::move(secret), use_nqn);
  if (!key.ok()) return Fail(err, key.status());
  out << auth::FormatDhchapKey(*key) << "\n";
  return 0;
}

int RunGenTlsKey(const std::string& secret_hex, int hmac, std::ostream& out, std::ostream& err) {
  auth::Bytes secret;
  if (!HexSecret(secret_hex, &secret, err)) return 1;
  auto psk = auth::GenerateTlsPsk(static_cast<auth::HashId>(hmac), std::move(secret));
  if (!psk.ok()) return Fail(err, psk.status());
  out << auth::FormatTlsPsk(*psk) << "\n";
  return 0;
}

int RunCheckTlsKey(const std::string& key, const std::string& hostnqn, const std::string& subnqn,
                   int version, bool show_psk, std::ostream& out, std::ostream& err) {
  auto psk = auth::ParseTlsPsk(key);
  if (!psk.ok()) return Fail(err, psk.status());
  if (subnqn.empty()) {
    if (show_psk) {
      err << "nvmf-ublk: --show-psk needs -n/--subsysnqn (the TLS PSK is derived for both NQNs)\n";
      return 1;
    }
    out << "valid TLS PSK: " << psk->key.size() << "-byte key, transform "
        << auth::ToString(psk->transform) << "\n";
    return 0;
  }
  std::string host = hostnqn;
  if (host.empty()) {
    auto id = discovery::ResolveHostIdentity("", "");
    if (!id.ok() || id->nqn_generated) {
      err << "nvmf-ublk: give -q/--hostnqn, or create " << discovery::NvmeConfigDir()
          << "/hostnqn\n";
      return 1;
    }
    host = id->hostnqn;
  }
  auto id = auth::DeriveTlsIdentity(*psk, host, subnqn, version);
  if (!id.ok()) return Fail(err, id.status());
  out << id->identity << "\n";
  if (show_psk) {
    out << absl::BytesToHexString(absl::string_view(
               reinterpret_cast<const char*>(id->tls_psk.data()), id->tls_psk.size()))
        << "\n";
  }
  return 0;
}

int RunCheckDhchapKey(const std::string& key, std::ostream& out, std::ostream& err) {
  auto k = auth::ParseDhchapKey(key);
  if (!k.ok()) return Fail(err, k.status());
  out << "valid DH-HMAC-CHAP key: " << k->secret.size() << "-byte secret, transform "
      << auth::ToString(k->transform) << "\n";
  return 0;
}

int RunShowHostNqn(std::ostream& out, std::ostream& err) {
  const std::string path = discovery::NvmeConfigDir() + "/hostnqn";
  auto text = discovery::ReadTextFile(path);
  if (!text.ok()) {
    err << "nvmf-ublk: " << path << ": " << text.status().message() << " (nvmf-ublk gen-hostnqn > "
        << path << " creates one; connect saves the one it "
        << "generates)\n";
    return 1;
  }
  std::string line = text->substr(0, text->find('\n'));
  out << line << "\n";
  return 0;
}

}  // namespace nvmf_ublk::cli
