#include "cli/cli.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/log.h"
#include "base/mounts.h"
#include "cli/fabrics.h"
#include "control/protocol.h"
#include "control/published_device.h"
#include "discovery/host_identity.h"
#include "io/engine.h"
#include "nvme/log_pages.h"
#include "nvme/spec.h"
#include "nvmf_ublk/control.h"

namespace nvmf_ublk::cli {
namespace {

using nlohmann::json;

struct Common {
  std::string transport = "tcp";
  std::string traddr;
  std::string trsvcid;
  std::string host_traddr;
  std::string host_iface;
  std::string hostnqn;
  std::string hostid;
  std::string output = "normal";
  std::string socket = kDefaultControlSocket;
  double timeout_s = -1;  // -1: per command (list 10 s, connect/disconnect 60 s)
};

int Fail(std::ostream& err, const absl::Status& s) {
  err << "nvmf-ublk: " << s.message() << "\n";
  return 1;
}

// A disconnect whose device's I/O did not stop in time: the daemon gave the device up. Exit 1.
int ReportGivenUp(const std::vector<DeviceInfo>& removed, std::ostream& err) {
  int n = 0;
  for (const DeviceInfo& d : removed) {
    if (d.state != "given-up") continue;
    err << "nvmf-ublk: " << d.path << ": its I/O did not stop within nvmf-ublkd's "
        << "--stop-timeout; the device was given up (its requests fail with EIO; ublk device "
        << d.dev_id << " is not deleted)\n";
    ++n;
  }
  return n == 0 ? 0 : 1;
}

std::string HumanSize(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  std::ostringstream s;
  s << std::fixed << std::setprecision(u ? 2 : 0) << v << " " << units[u];
  return s.str();
}

// Devices that are still mounted here: `disconnect` refuses them unless --force.
absl::Status CheckNotMounted(const std::vector<int>& dev_ids) {
  for (const int id : dev_ids) {
    const std::vector<Mount> mounts = MountsOfDevice(id);
    if (!mounts.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "/dev/ublkb", id, " is mounted on ", mounts.front().mountpoint,
          ": unmount it first (removing it would lose the filesystem's unwritten data), or use "
          "--force"));
    }
  }
  return absl::OkStatus();
}

// The udev helper: KEY=VALUE lines for udev's IMPORT{program}; nothing for a device that is not
// one of ours (another ublk server's), or one whose daemon has not published it.
int UdevInfo(const std::string& name, const std::string& state_dir, std::ostream& out,
             std::ostream& err) {
  const int id = control::UblkDevIdFromName(name);
  if (id < 0) {
    err << "nvmf-ublk: udev-info: '" << name << "' is not a ublk block device name (ublkbN)\n";
    return 2;
  }
  std::ifstream in(control::PublishedDevicePath(state_dir, id));
  if (!in) return 0;
  std::stringstream text;
  text << in.rdbuf();
  auto dev = control::PublishedDeviceFromJson(text.str());
  if (!dev.ok()) {
    err << "nvmf-ublk: udev-info: " << control::PublishedDevicePath(state_dir, id) << ": "
        << dev.status().message() << "\n";
    return 1;
  }
  if (dev->dev_id != id) return 0;
  for (const auto& [k, v] : control::UdevProperties(*dev)) out << k << "=" << v << "\n";
  return 0;
}

// Each device once, its paths under it; then controllers that serve no device.
void PrintDevices(const std::vector<ControllerSummary>& ctrls, const std::vector<DeviceInfo>& devs,
                  std::ostream& out) {
  out << std::left << std::setw(14) << "Device" << std::setw(6) << "NSID" << std::setw(12) << "Size"
      << std::setw(7) << "Block" << std::setw(11) << "State"
      << "Subsystem / Paths (I/O policy)\n";
  for (const auto& d : devs) {
    std::string state = d.state;
    if (state == "live") {
      // A live device with no live path is waiting for one.
      const bool any_live = std::any_of(d.paths.begin(), d.paths.end(),
                                        [](const PathInfo& p) { return p.state == "live"; });
      if (!any_live && !d.paths.empty()) state = d.paths.front().state;
    }
    out << std::left << std::setw(14) << d.path << std::setw(6) << d.nsid << std::setw(12)
        << (d.size_bytes ? HumanSize(d.size_bytes) : "-") << std::setw(7)
        << (d.logical_block ? std::to_string(d.logical_block) : "-") << std::setw(11) << state
        << d.subnqn;
    if (!d.iopolicy.empty()) out << " (" << d.iopolicy << ")";
    out << "\n";
    for (const auto& p : d.paths) {
      out << "  path " << p.traddr << ":" << p.trsvcid << " cntlid " << p.cntlid << " " << p.state
          << " ana " << p.ana_state << " in-flight " << p.in_flight << " ios " << p.ios
          << " errors " << p.errors << " latency "
          << (p.latency_us > 0 ? absl::StrFormat("%.0f us", p.latency_us) : std::string("-"))
          << "\n";
    }
  }
  for (const auto& c : ctrls) {
    if (!c.devices.empty()) continue;
    out << std::left << std::setw(14) << "-" << std::setw(6) << "-" << std::setw(12) << "-"
        << std::setw(7) << "-" << std::setw(11) << c.state << c.subnqn << " " << c.traddr << ":"
        << c.trsvcid << "\n";
  }
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{
      "nvmf-ublk: NVMe over Fabrics (TCP) namespaces as ublk block devices, served by "
      "nvmf-ublkd.\n\n"
      "Devices live until `disconnect`/`disconnect-all`. Stopping or restarting nvmf-ublkd "
      "(systemctl stop/restart, SIGTERM, an upgrade) keeps every device and mounted filesystem: "
      "I/O waits in the kernel and the next nvmf-ublkd takes the devices over (`list` shows "
      "them as recovering until then). A killed or crashed daemon is recovered the same way.",
      "nvmf-ublk"};
  app.require_subcommand(1);
  Common o;
  app.add_option("--socket", o.socket, "control socket of nvmf-ublkd")->capture_default_str();
  app.add_option("--timeout", o.timeout_s,
                 "seconds to wait for nvmf-ublkd's answer (default: 10 for list, 60 otherwise)")
      ->check(CLI::Range(0.1, 86400.0));

  FabricsOptions disc_o;
  CLI::App* discover = app.add_subcommand(
      "discover",
      "read a discovery controller's log, and the logs it refers to (no -a: each controller of "
      "/etc/nvme/discovery.conf and config.json)");
  AddFabricsOptions(discover, &disc_o, Verb::kDiscover);

  FabricsOptions all_o;
  int grace_s = 60;
  CLI::App* connect_all = app.add_subcommand(
      "connect-all",
      "connect every NVM subsystem of a discovery log (referrals followed; no -a: the controllers "
      "of /etc/nvme/discovery.conf and config.json); what is connected already stays");
  AddFabricsOptions(connect_all, &all_o, Verb::kConnectAll);
  connect_all
      ->add_option("--grace-period", grace_s,
                   "--persistent: seconds a record it connected may be missing from the log "
                   "before it is disconnected")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));

  FabricsOptions conn_o;
  ConnectArgs& ca = conn_o.args;
  CLI::App* connect =
      app.add_subcommand("connect", "connect a subsystem; one device per namespace");
  AddFabricsOptions(connect, &conn_o, Verb::kConnect);
  connect->add_option("-n,--nqn", ca.subnqn, "subsystem NQN")->required();
  connect
      ->add_option("--iopolicy", ca.iopolicy,
                   "multipath I/O policy: round-robin (default), queue-depth, failover, latency; "
                   "on a further path of a connected device it changes the device's")
      ->check(CLI::IsMember({"round-robin", "queue-depth", "failover", "latency"}));
  bool no_ghost_hold = false;
  connect->add_flag("--no-ghost-write-hold", no_ghost_hold,
                    "re-issue a write left unanswered by a lost path on another path at once, "
                    "instead of after KATO + CQT (TP 4129; the hold keeps an old copy of the "
                    "write from landing after a newer one)");

  std::string dis_nqn, dis_dev, dis_addr, dis_svc;
  CLI::App* disconnect = app.add_subcommand(
      "disconnect",
      "remove a subsystem's devices, one device, or (-n with -a/-s) the paths through one portal");
  auto* dn = disconnect->add_option("-n,--nqn", dis_nqn, "subsystem NQN");
  auto* dd = disconnect->add_option("-d,--device", dis_dev, "device, e.g. /dev/ublkb0");
  auto* da = disconnect->add_option(
      "-a,--traddr", dis_addr,
      "with -n: only the paths through this address; devices with another path stay");
  auto* ds = disconnect->add_option("-s,--trsvcid", dis_svc, "with -n -a: only this port");
  dn->excludes(dd);
  dd->excludes(dn);
  da->needs(dn);
  ds->needs(da);
  bool force = false;
  disconnect->add_flag("--force", force, "remove the device even if a filesystem is mounted on it");

  std::string owner;
  bool unmount = false;
  CLI::App* disconnect_all = app.add_subcommand(
      "disconnect-all", "remove every device (refuses mounted ones unless --unmount/--force)");
  disconnect_all->add_flag("--unmount", unmount,
                           "unmount filesystems on the devices first (the shutdown unit does)");
  disconnect_all->add_flag("--force", force, "remove devices even if filesystems are mounted");
  disconnect_all->add_option("--owner", owner,
                             "only what connect/connect-all --owner made (and the persistent "
                             "discovery controllers made with it)");

  std::string subsys_out = "normal";
  CLI::App* list_subsys = app.add_subcommand(
      "list-subsys",
      "subsystems with their controllers (paths) and devices; discovery controllers");
  list_subsys->add_option("-o,--output-format", subsys_out, "normal|json")
      ->check(CLI::IsMember({"normal", "json"}));
  CLI::App* gen_hostnqn = app.add_subcommand("gen-hostnqn", "print a new host NQN");
  CLI::App* show_hostnqn =
      app.add_subcommand("show-hostnqn", "print the host NQN of /etc/nvme/hostnqn");
  std::string key_secret, key_nqn, check_key;
  int key_length = 0, key_hmac = 0;
  CLI::App* gen_key = app.add_subcommand(
      "gen-dhchap-key", "print a new DH-HMAC-CHAP secret (nvme-cli's gen-dhchap-key)");
  gen_key->add_option("-s,--secret", key_secret, "the secret, in hexadecimal (default: random)");
  gen_key
      ->add_option("-l,--key-length", key_length,
                   "secret length: 32, 48 or 64 bytes (default 32; with --hmac, its length)")
      ->check(CLI::IsMember({32, 48, 64}));
  gen_key
      ->add_option("-m,--hmac", key_hmac,
                   "transform the secret for the NQN: 0 none, 1 SHA-256, 2 SHA-384, 3 SHA-512")
      ->check(CLI::Range(0, 3));
  gen_key->add_option("-n,--nqn", key_nqn,
                      "the host NQN the key is for (with --hmac; default /etc/nvme/hostnqn)");
  std::string tls_secret, tls_key, tls_host, tls_sub;
  int tls_hmac = 1, tls_identity = 0;
  bool tls_show = false;
  CLI::App* gen_tls = app.add_subcommand(
      "gen-tls-key", "print a new NVMe/TCP TLS PSK, NVMeTLSkey-1:hh:... (nvme-cli's gen-tls-key)");
  gen_tls->add_option("-s,--secret", tls_secret, "the key, in hexadecimal (default: random)");
  gen_tls
      ->add_option("-m,--hmac", tls_hmac,
                   "1: SHA-256, 32 bytes (default); 2: SHA-384, 48 bytes; 0: used untransformed")
      ->check(CLI::Range(0, 2));
  CLI::App* check_tls = app.add_subcommand(
      "check-tls-key",
      "check a TLS PSK; with -n print its PSK identity (and with --show-psk the derived TLS PSK)");
  check_tls->add_option("-k,--keydata", tls_key, "the key, NVMeTLSkey-1:hh:base64:")->required();
  check_tls->add_option("-q,--hostnqn", tls_host, "host NQN (default: /etc/nvme/hostnqn)");
  check_tls->add_option("-n,--subsysnqn", tls_sub, "subsystem NQN");
  check_tls->add_option("-I,--identity", tls_identity, "PSK identity version: 0 (default) or 1")
      ->check(CLI::Range(0, 1));
  check_tls->add_flag("--show-psk", tls_show,
                      "also print the derived TLS PSK in hex (what a target's .nvme keyring holds "
                      "under that identity)");
  CLI::App* check_key_cmd =
      app.add_subcommand("check-dhchap-key", "check a DH-HMAC-CHAP secret's format and CRC");
  check_key_cmd->add_option("-k,--key", check_key, "the key, DHHC-1:hh:base64:")->required();

  std::string udev_name;
  std::string state_dir = "/run/nvmf-ublk";
  CLI::App* udev_info = app.add_subcommand(
      "udev-info", "print udev properties of a device (for udev/60-nvmf-ublk.rules)");
  udev_info->add_option("device", udev_name, "kernel name, e.g. ublkb0 or ublkb0p1")->required();
  udev_info->add_option("--state-dir", state_dir, "nvmf-ublkd's state directory")
      ->capture_default_str();

  std::string pol_dev, pol_name;
  CLI::App* set_policy = app.add_subcommand(
      "set-iopolicy", "change a device's multipath I/O policy at once (kept across restarts)");
  set_policy->add_option("-d,--device", pol_dev, "device, e.g. /dev/ublkb0")->required();
  set_policy->add_option("policy", pol_name, "round-robin, queue-depth, failover or latency")
      ->required()
      ->check(CLI::IsMember({"round-robin", "queue-depth", "failover", "latency"}));

  CLI::App* list = app.add_subcommand(
      "list", "list devices with their paths, controllers and persistent discovery controllers");
  list->add_option("-o,--output-format", o.output, "normal|json")
      ->check(CLI::IsMember({"normal", "json"}));
  app.add_subcommand("version", "print the version");

  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    std::ostringstream o1, o2;
    const int rc = app.exit(e, o1, o2);
    if (rc == 0) {
      out << o1.str();
      return 0;
    }
    std::string msg = o2.str();
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    const size_t nl = msg.find('\n');
    err << "nvmf-ublk: " << msg.substr(0, nl) << " (see --help)\n";
    return 2;
  }

  if (app.got_subcommand("version")) {
    out << "nvmf-ublk 0.1.0\n";
    return 0;
  }
  if (app.got_subcommand(discover)) return RunDiscover(disc_o, out, err);
  if (app.got_subcommand(gen_hostnqn)) return RunGenHostNqn(out);
  if (app.got_subcommand(show_hostnqn)) return RunShowHostNqn(out, err);
  if (app.got_subcommand(gen_key)) {
    return RunGenDhchapKey(key_secret, key_length, key_hmac, key_nqn, out, err);
  }
  if (app.got_subcommand(check_key_cmd)) return RunCheckDhchapKey(check_key, out, err);
  if (app.got_subcommand(gen_tls)) return RunGenTlsKey(tls_secret, tls_hmac, out, err);
  if (app.got_subcommand(check_tls)) {
    return RunCheckTlsKey(tls_key, tls_host, tls_sub, tls_identity, tls_show, out, err);
  }
  if (app.got_subcommand(connect_all)) {
    // The files' errors before the daemon is asked anything.
    if (!all_o.refused.empty()) {
      err << "nvmf-ublk: " << RefusedMessage(all_o) << "\n";
      return 2;
    }
    if (all_o.args.traddr.empty()) {
      if (auto files = DiscoveryControllersFromFiles(all_o); !files.ok()) {
        return Fail(err, files.status());
      }
    }
  }
  if (app.got_subcommand(connect) && !conn_o.refused.empty()) {
    err << "nvmf-ublk: " << RefusedMessage(conn_o) << "\n";
    return 2;
  }
  if (app.got_subcommand(udev_info)) return UdevInfo(udev_name, state_dir, out, err);

  auto client = ControlClient::Open(o.socket);
  if (!client.ok()) return Fail(err, client.status());
  const double default_timeout_s = app.got_subcommand(list) || app.got_subcommand(list_subsys) ? 10
                                   : app.got_subcommand(connect_all)                           ? 600
                                                                                               : 60;
  client->set_timeout_ms(
      static_cast<int>((o.timeout_s > 0 ? o.timeout_s : default_timeout_s) * 1000));

  if (app.got_subcommand(connect_all)) {
    return RunConnectAll(&*client, all_o, grace_s, out, err);
  }
  if (app.got_subcommand(list_subsys)) return RunListSubsys(&*client, subsys_out, out, err);
  if (app.got_subcommand(connect)) {
    if (ca.trsvcid.empty()) ca.trsvcid = "4420";
    ca.ghost_write_hold = !no_ghost_hold;
    if (absl::Status s = ResolveAndSaveHostIdentity(&ca, err); !s.ok()) return Fail(err, s);
    bool already = false;
    auto devs = client->Connect(ca, &already);
    if (!devs.ok()) return Fail(err, devs.status());
    if (already) {
      err << "nvmf-ublk: " << ca.subnqn << " at " << ca.traddr << ":" << ca.trsvcid
          << " is already connected (-D/--duplicate-connect for a second association)\n";
    }
    if (conn_o.output == "json") {
      json j = json::array();
      for (const auto& d : *devs) j.push_back(control::ToJson(d));
      out << json{{"devices", j}, {"already_connected", already}}.dump(2) << "\n";
    } else {
      for (const auto& d : *devs) out << d.path << "\n";
    }
    for (const auto& d : *devs) {
      if (d.stable_id.empty()) {
        err << "nvmf-ublk: note: " << d.path << ": namespace " << d.nsid
            << " reports no NGUID, EUI-64 or UUID, so it is not shared across paths: another "
               "portal to it gets a device of its own\n";
      }
    }
    return 0;
  }
  if (app.got_subcommand(disconnect)) {
    if (dis_nqn.empty() && dis_dev.empty()) {
      err << "nvmf-ublk: disconnect needs -n NQN or -d DEVICE\n";
      return 2;
    }
    if (!force) {
      // The devices this removes: with -a/-s, only those left without a path.
      auto devs = client->ListDevices();
      if (!devs.ok()) return Fail(err, devs.status());
      std::vector<int> ids;
      for (const auto& d : *devs) {
        bool goes = dis_nqn.empty() ? d.path == dis_dev : d.subnqn == dis_nqn;
        if (goes && !dis_addr.empty()) {
          goes = std::all_of(d.paths.begin(), d.paths.end(), [&](const PathInfo& p) {
            return p.traddr == dis_addr && (dis_svc.empty() || p.trsvcid == dis_svc);
          });
        }
        if (goes) ids.push_back(d.dev_id);
      }
      if (absl::Status s = CheckNotMounted(ids); !s.ok()) return Fail(err, s);
    }
    auto removed = !dis_nqn.empty() && !dis_addr.empty()
                       ? client->DisconnectPath(dis_nqn, dis_addr, dis_svc)
                   : dis_nqn.empty() ? client->DisconnectDevice(dis_dev)
                                     : client->DisconnectSubsystem(dis_nqn);
    if (!removed.ok()) return Fail(err, removed.status());
    if (dis_nqn.empty()) {
      out << "disconnected " << dis_dev << "\n";
    } else if (!dis_addr.empty()) {
      out << "NQN:" << dis_nqn << " disconnected the path(s) through " << dis_addr
          << (dis_svc.empty() ? "" : ":") << dis_svc << "; removed " << removed->size()
          << " device(s) left without a path\n";
    } else {
      out << "NQN:" << dis_nqn << " disconnected " << removed->size() << " device(s)\n";
    }
    return ReportGivenUp(*removed, err);
  }
  if (app.got_subcommand(set_policy)) {
    if (absl::Status s = client->SetIoPolicy(pol_dev, pol_name); !s.ok()) return Fail(err, s);
    out << pol_dev << ": I/O policy " << pol_name << "\n";
    return 0;
  }
  if (app.got_subcommand(disconnect_all)) {
    auto all = client->ListDevices();
    if (!all.ok()) return Fail(err, all.status());
    if (!owner.empty()) {
      // Only the devices every path of which that owner (or its discovery controllers) made.
      auto ctrls = client->List();
      if (!ctrls.ok()) return Fail(err, ctrls.status());
      auto dcs = client->ListDiscovery();
      if (!dcs.ok()) return Fail(err, dcs.status());
      std::set<std::string> owners{owner};
      for (const auto& dc : *dcs) {
        if (dc.owner == owner) owners.insert("discovery:" + dc.id);
      }
      std::set<std::string> names;
      for (const auto& c : *ctrls) {
        if (owners.count(c.owner)) names.insert(c.name);
      }
      std::vector<DeviceInfo> mine;
      for (const auto& d : *all) {
        if (!d.paths.empty() && std::all_of(d.paths.begin(), d.paths.end(), [&](const auto& p) {
              return names.count(p.controller) != 0;
            })) {
          mine.push_back(d);
        }
      }
      *all = std::move(mine);
    }
    // A device whose filesystem stays mounted (busy) is kept, with its data; the others go.
    std::vector<std::string> removable;
    int kept = 0;
    {
      for (const auto& d : *all) {
        const std::vector<Mount> mounts = MountsOfDevice(d.dev_id);
        absl::Status s = unmount ? Unmount(mounts) : absl::OkStatus();
        if (unmount && s.ok()) {
          for (const Mount& m : mounts)
            out << "unmounted " << m.mountpoint << " (" << d.path << ")\n";
        }
        if (s.ok() && !force) s = CheckNotMounted({d.dev_id});
        if (!s.ok()) {
          err << "nvmf-ublk: keeping " << d.path << ": " << s.message() << "\n";
          ++kept;
          continue;
        }
        removable.push_back(d.path);
      }
    }
    absl::StatusOr<std::vector<DeviceInfo>> removed;
    if (kept == 0) {
      removed = client->DisconnectAll(owner);  // also controllers that have no device
    } else {
      std::vector<DeviceInfo> some;
      for (const std::string& path : removable) {
        auto r = client->DisconnectDevice(path);
        if (!r.ok()) return Fail(err, r.status());
        some.insert(some.end(), r->begin(), r->end());
      }
      removed = std::move(some);
    }
    if (!removed.ok()) return Fail(err, removed.status());
    for (const auto& d : *removed) out << "disconnected " << d.path << "\n";
    out << "disconnected " << removed->size() << " device(s)\n";
    if (ReportGivenUp(*removed, err) != 0) return 1;
    if (kept > 0) {
      err << "nvmf-ublk: kept " << kept << " device(s) with mounted filesystems\n";
      return 1;
    }
    return 0;
  }
  if (app.got_subcommand(list)) {
    auto ctrls = client->List();
    if (!ctrls.ok()) return Fail(err, ctrls.status());
    auto devs = client->ListDevices();
    if (!devs.ok()) return Fail(err, devs.status());
    auto dcs = client->ListDiscovery();
    if (!dcs.ok()) return Fail(err, dcs.status());
    if (o.output == "json") {
      json c = json::array(), d = json::array(), dc = json::array();
      for (const auto& x : *ctrls) c.push_back(control::ToJson(x));
      for (const auto& x : *devs) d.push_back(control::ToJson(x));
      for (const auto& x : *dcs) dc.push_back(control::ToJson(x));
      out << json{{"devices", d}, {"controllers", c}, {"discovery", dc}}.dump(2) << "\n";
      return 0;
    }
    PrintDevices(*ctrls, *devs, out);
    PrintDiscoveryControllers(*dcs, out);
    return 0;
  }
  return 2;
}

}  // namespace nvmf_ublk::cli
