#include "cli/cli.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/log.h"
#include "base/mounts.h"
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

void AddTransport(CLI::App* c, Common* o) {
  c->add_option("-t,--transport", o->transport, "transport type (tcp)")
      ->check(CLI::IsMember({"tcp"}));
  c->add_option("-a,--traddr", o->traddr, "transport address (IPv4/IPv6 or name)")->required();
  c->add_option("-s,--trsvcid", o->trsvcid, "transport service id (TCP port)");
  c->add_option("-w,--host-traddr", o->host_traddr, "source address for the connection");
  c->add_option("-f,--host-iface", o->host_iface, "network interface for the connection");
  c->add_option("-q,--hostnqn", o->hostnqn, "host NQN (default: /etc/nvme/hostnqn)");
  c->add_option("-I,--hostid", o->hostid, "host ID, a UUID (default: /etc/nvme/hostid)");
}

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

const char* TreqName(uint8_t treq) {
  switch (treq & 0x3) {
    case 0:
      return "not specified";
    case 1:
      return "required";
    case 2:
      return "not required";
  }
  return "reserved";
}

int Discover(const Common& o, std::ostream& out, std::ostream& err) {
  auto id = discovery::ResolveHostIdentity(o.hostnqn, o.hostid);
  if (!id.ok()) return Fail(err, id.status());
  auto engine = io::Engine::Create(1);
  if (!engine.ok()) return Fail(err, engine.status());
  io::ControllerOptions opts;
  opts.discovery = true;
  opts.traddr = o.traddr;
  opts.trsvcid = o.trsvcid.empty() ? "8009" : o.trsvcid;  // IANA's NVMe/TCP discovery port
  opts.host_traddr = o.host_traddr;
  opts.host_iface = o.host_iface;
  opts.subnqn = nvme::kDiscoveryNqn;
  opts.hostnqn = id->hostnqn;
  opts.hostid = id->hostid_bytes;
  opts.kato_s = 0;  // one-shot: no keep-alive
  auto dc = io::SyncController::Connect(engine->get(), opts);
  if (!dc.ok()) {
    return Fail(
        err, absl::Status(dc.status().code(), absl::StrCat("discover ", o.traddr, ":", opts.trsvcid,
                                                           ": ", dc.status().message())));
  }
  auto log = (*dc)->DiscoveryLog();
  (*dc)->Disconnect();
  if (!log.ok()) return Fail(err, log.status());
  if (o.output == "json") {
    json records = json::array();
    for (const auto& e : *log) {
      records.push_back({{"trtype", nvme::TrtypeName(e.trtype)},
                         {"adrfam", nvme::AdrfamName(e.adrfam)},
                         {"subtype", nvme::SubtypeName(e.subtype)},
                         {"treq", TreqName(e.treq)},
                         {"portid", e.portid},
                         {"trsvcid", e.trsvcid},
                         {"subnqn", e.subnqn},
                         {"traddr", e.traddr},
                         {"eflags", e.eflags},
                         {"sectype", e.tcp_sectype}});
    }
    out << json{{"records", records}}.dump(2) << "\n";
    return 0;
  }
  out << "Discovery Log Number of Records " << log->size() << "\n";
  for (size_t i = 0; i < log->size(); ++i) {
    const auto& e = (*log)[i];
    out << "=====Discovery Log Entry " << i << "======\n"
        << "trtype:  " << nvme::TrtypeName(e.trtype) << "\n"
        << "adrfam:  " << nvme::AdrfamName(e.adrfam) << "\n"
        << "subtype: " << nvme::SubtypeName(e.subtype) << "\n"
        << "treq:    " << TreqName(e.treq) << "\n"
        << "portid:  " << e.portid << "\n"
        << "trsvcid: " << e.trsvcid << "\n"
        << "subnqn:  " << e.subnqn << "\n"
        << "traddr:  " << e.traddr << "\n"
        << "eflags:  " << e.eflags << "\n";
  }
  return 0;
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

  CLI::App* discover = app.add_subcommand("discover", "read a discovery controller's log");
  AddTransport(discover, &o);
  discover->add_option("-o,--output-format", o.output, "normal|json")
      ->check(CLI::IsMember({"normal", "json"}));

  ConnectArgs ca;
  CLI::App* connect =
      app.add_subcommand("connect", "connect a subsystem; one device per namespace");
  AddTransport(connect, &o);
  connect->add_option("-n,--nqn", ca.subnqn, "subsystem NQN")->required();
  connect->add_option("-i,--nr-io-queues", ca.nr_io_queues, "I/O queues (default: one per core)");
  connect->add_option("-Q,--queue-size", ca.queue_size, "I/O queue size")->capture_default_str();
  connect->add_option("-k,--keep-alive-tmo", ca.keep_alive_tmo, "keep-alive timeout (s)");
  connect->add_option("-c,--reconnect-delay", ca.reconnect_delay, "reconnect delay (s)")
      ->capture_default_str();
  connect
      ->add_option("-l,--ctrl-loss-tmo", ca.ctrl_loss_tmo,
                   "controller loss timeout (s, -1: forever)")
      ->capture_default_str();
  connect->add_option("--fast_io_fail_tmo,--fast-io-fail-tmo", ca.fast_io_fail_tmo,
                      "fail queued I/O after this many seconds (-1: off)");
  connect->add_flag("-g,--hdr-digest", ca.hdr_digest, "enable the header digest");
  connect->add_flag("-G,--data-digest", ca.data_digest, "enable the data digest");
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
  connect->add_option("-o,--output-format", o.output, "normal|json")
      ->check(CLI::IsMember({"normal", "json"}));

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

  bool unmount = false;
  CLI::App* disconnect_all = app.add_subcommand(
      "disconnect-all", "remove every device (refuses mounted ones unless --unmount/--force)");
  disconnect_all->add_flag("--unmount", unmount,
                           "unmount filesystems on the devices first (the shutdown unit does)");
  disconnect_all->add_flag("--force", force, "remove devices even if filesystems are mounted");

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

  CLI::App* list = app.add_subcommand("list", "list devices with their paths, and controllers");
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
  if (app.got_subcommand(discover)) return Discover(o, out, err);
  if (app.got_subcommand(udev_info)) return UdevInfo(udev_name, state_dir, out, err);

  auto client = ControlClient::Open(o.socket);
  if (!client.ok()) return Fail(err, client.status());
  const double default_timeout_s = app.got_subcommand(list) ? 10 : 60;
  client->set_timeout_ms(
      static_cast<int>((o.timeout_s > 0 ? o.timeout_s : default_timeout_s) * 1000));

  if (app.got_subcommand(connect)) {
    ca.transport = o.transport;
    ca.traddr = o.traddr;
    ca.trsvcid = o.trsvcid.empty() ? "4420" : o.trsvcid;
    ca.host_traddr = o.host_traddr;
    ca.host_iface = o.host_iface;
    ca.ghost_write_hold = !no_ghost_hold;
    auto id = discovery::ResolveHostIdentity(o.hostnqn, o.hostid);
    if (!id.ok()) return Fail(err, id.status());
    ca.hostnqn = id->hostnqn;
    ca.hostid = id->hostid;
    auto devs = client->Connect(ca);
    if (!devs.ok()) return Fail(err, devs.status());
    if (o.output == "json") {
      json j = json::array();
      for (const auto& d : *devs) j.push_back(control::ToJson(d));
      out << json{{"devices", j}}.dump(2) << "\n";
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
      removed = client->DisconnectAll();  // also controllers that have no device
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
    if (o.output == "json") {
      json c = json::array(), d = json::array();
      for (const auto& x : *ctrls) c.push_back(control::ToJson(x));
      for (const auto& x : *devs) d.push_back(control::ToJson(x));
      out << json{{"devices", d}, {"controllers", c}}.dump(2) << "\n";
      return 0;
    }
    PrintDevices(*ctrls, *devs, out);
    return 0;
  }
  return 2;
}

}  // namespace nvmf_ublk::cli
