#include "control/protocol.h"

#include <cstdint>
#include <limits>
#include <map>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace nvmf_ublk::control {
namespace {

using nlohmann::json;

// A field of a request or state file, of exactly the type `T` needs: a value of another JSON type,
// or an integer that `T` cannot hold, is a clear error (never an exception, never truncated).
template <typename T>
absl::Status Get(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) {
      return absl::InvalidArgumentError(absl::StrCat(key, " must be a boolean"));
    }
    *out = it->template get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    bool fits = false;
    if (it->is_number_unsigned()) {
      const uint64_t v = it->template get<uint64_t>();
      fits = v <= static_cast<uint64_t>(std::numeric_limits<T>::max());
      if (fits) *out = static_cast<T>(v);
    } else if (it->is_number_integer()) {
      const int64_t v = it->template get<int64_t>();
      fits = v >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
             (v < 0 ||
              static_cast<uint64_t>(v) <= static_cast<uint64_t>(std::numeric_limits<T>::max()));
      if (fits) *out = static_cast<T>(v);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(key, " must be an integer"));
    }
    if (!fits) {
      return absl::InvalidArgumentError(absl::StrCat(key, " ", it->dump(), " is out of range"));
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) return absl::InvalidArgumentError(absl::StrCat(key, " must be a number"));
    *out = it->template get<T>();
  } else {
    if (!it->is_string()) return absl::InvalidArgumentError(absl::StrCat(key, " must be a string"));
    *out = it->template get<std::string>();
  }
  return absl::OkStatus();
}

// Replies the CLI reads: a field of the wrong type keeps its default.
template <typename T>
void Keep(const json& j, const char* key, T* out) {
  Get(j, key, out).IgnoreError();
}

absl::Status CheckRange(const char* name, int v, int lo, int hi) {
  if (v < lo || v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " ", v, " is out of range [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

json ToJson(const ConnectArgs& a) {
  return json{{"transport", a.transport},
              {"traddr", a.traddr},
              {"trsvcid", a.trsvcid},
              {"subnqn", a.subnqn},
              {"hostnqn", a.hostnqn},
              {"hostid", a.hostid},
              {"host_traddr", a.host_traddr},
              {"host_iface", a.host_iface},
              {"nr_io_queues", a.nr_io_queues},
              {"queue_size", a.queue_size},
              {"keep_alive_tmo", a.keep_alive_tmo},
              {"reconnect_delay", a.reconnect_delay},
              {"ctrl_loss_tmo", a.ctrl_loss_tmo},
              {"fast_io_fail_tmo", a.fast_io_fail_tmo},
              {"hdr_digest", a.hdr_digest},
              {"data_digest", a.data_digest},
              {"dhchap_secret", a.dhchap_secret},
              {"dhchap_ctrl_secret", a.dhchap_ctrl_secret},
              {"tls", a.tls},
              {"tls_key", a.tls_key},
              {"iopolicy", a.iopolicy},
              {"ghost_write_hold", a.ghost_write_hold},
              {"duplicate_connect", a.duplicate_connect},
              {"disable_sqflow", a.disable_sqflow},
              {"tos", a.tos},
              {"owner", a.owner}};
}

absl::StatusOr<ConnectArgs> ConnectArgsFromJson(const json& j) {
  ConnectArgs a;
  if (!j.is_object()) return absl::InvalidArgumentError("bad connect request: not a JSON object");
  for (absl::Status s : {Get(j, "transport", &a.transport),
                         Get(j, "traddr", &a.traddr),
                         Get(j, "trsvcid", &a.trsvcid),
                         Get(j, "subnqn", &a.subnqn),
                         Get(j, "hostnqn", &a.hostnqn),
                         Get(j, "hostid", &a.hostid),
                         Get(j, "host_traddr", &a.host_traddr),
                         Get(j, "host_iface", &a.host_iface),
                         Get(j, "nr_io_queues", &a.nr_io_queues),
                         Get(j, "queue_size", &a.queue_size),
                         Get(j, "keep_alive_tmo", &a.keep_alive_tmo),
                         Get(j, "reconnect_delay", &a.reconnect_delay),
                         Get(j, "ctrl_loss_tmo", &a.ctrl_loss_tmo),
                         Get(j, "fast_io_fail_tmo", &a.fast_io_fail_tmo),
                         Get(j, "hdr_digest", &a.hdr_digest),
                         Get(j, "data_digest", &a.data_digest),
                         Get(j, "dhchap_secret", &a.dhchap_secret),
                         Get(j, "dhchap_ctrl_secret", &a.dhchap_ctrl_secret),
                         Get(j, "tls", &a.tls),
                         Get(j, "tls_key", &a.tls_key),
                         Get(j, "iopolicy", &a.iopolicy),
                         Get(j, "ghost_write_hold", &a.ghost_write_hold),
                         Get(j, "duplicate_connect", &a.duplicate_connect),
                         Get(j, "disable_sqflow", &a.disable_sqflow),
                         Get(j, "tos", &a.tos),
                         Get(j, "owner", &a.owner)}) {
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("bad connect request: ", s.message()));
    }
  }
  if (a.transport != "tcp") {
    return absl::InvalidArgumentError(
        absl::StrCat("transport '", a.transport, "' is not supported (only tcp)"));
  }
  if (a.traddr.empty()) return absl::InvalidArgumentError("traddr (-a) is required");
  if (a.subnqn.empty()) return absl::InvalidArgumentError("subsystem NQN (-n) is required");
  if (absl::Status s = CheckRange("nr_io_queues", a.nr_io_queues, 0, 1024); !s.ok()) return s;
  if (absl::Status s = CheckRange("queue_size", a.queue_size, 16, 1024); !s.ok()) return s;
  if (absl::Status s = CheckRange("keep_alive_tmo", a.keep_alive_tmo, -1, 65535); !s.ok()) return s;
  if (absl::Status s = CheckRange("reconnect_delay", a.reconnect_delay, 1, 3600); !s.ok()) return s;
  if (absl::Status s = CheckRange("ctrl_loss_tmo", a.ctrl_loss_tmo, -1, 1 << 30); !s.ok()) return s;
  if (absl::Status s = CheckRange("fast_io_fail_tmo", a.fast_io_fail_tmo, -1, 1 << 30); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRange("tos", a.tos, -1, 255); !s.ok()) return s;
  if (!a.iopolicy.empty() && a.iopolicy != "round-robin" && a.iopolicy != "queue-depth" &&
      a.iopolicy != "failover" && a.iopolicy != "latency") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown I/O policy '", a.iopolicy,
                     "' (choose round-robin, queue-depth, failover or latency)"));
  }
  if (absl::Status s = DhchapConfigFor(a).status(); !s.ok()) return s;
  if (absl::Status s = TlsPskFor(a).status(); !s.ok()) return s;
  return a;
}

absl::StatusOr<std::shared_ptr<const auth::TlsPsk>> TlsPskFor(const ConnectArgs& a) {
  if (!a.tls && a.tls_key.empty()) return nullptr;
  if (a.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls needs the PSK: --tls-key NVMeTLSkey-1:... (or --tls-key-file); nvmf-ublk does not "
        "read the kernel's .nvme keyring");
  }
  if (!a.tls) return absl::InvalidArgumentError("--tls-key is given without --tls");
  auto psk = auth::ParseTlsPsk(a.tls_key);
  if (!psk.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-key: ", psk.status().message()));
  }
  return std::make_shared<const auth::TlsPsk>(std::move(*psk));
}

absl::StatusOr<std::shared_ptr<const auth::DhchapHostConfig>> DhchapConfigFor(
    const ConnectArgs& a) {
  if (a.dhchap_secret.empty() && a.dhchap_ctrl_secret.empty()) return nullptr;
  if (a.dhchap_secret.empty()) {
    return absl::InvalidArgumentError(
        "--dhchap-ctrl-secret needs --dhchap-secret too: the host authenticates itself first");
  }
  auto config = std::make_shared<auth::DhchapHostConfig>();
  auto host = auth::ParseDhchapKey(a.dhchap_secret);
  if (!host.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--dhchap-secret: ", host.status().message()));
  }
  config->host_key = std::move(*host);
  if (!a.dhchap_ctrl_secret.empty()) {
    auto ctrl = auth::ParseDhchapKey(a.dhchap_ctrl_secret);
    if (!ctrl.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--dhchap-ctrl-secret: ", ctrl.status().message()));
    }
    config->ctrl_key = std::move(*ctrl);
  }
  return config;
}

json ToJson(const PathInfo& p) {
  return json{{"controller", p.controller}, {"traddr", p.traddr}, {"trsvcid", p.trsvcid},
              {"cntlid", p.cntlid},         {"state", p.state},   {"ana_state", p.ana_state},
              {"in_flight", p.in_flight},   {"ios", p.ios},       {"errors", p.errors},
              {"latency_us", p.latency_us}};
}

PathInfo PathInfoFromJson(const json& j) {
  PathInfo p;
  Keep(j, "controller", &p.controller);
  Keep(j, "traddr", &p.traddr);
  Keep(j, "trsvcid", &p.trsvcid);
  Keep(j, "cntlid", &p.cntlid);
  Keep(j, "state", &p.state);
  Keep(j, "ana_state", &p.ana_state);
  Keep(j, "in_flight", &p.in_flight);
  Keep(j, "ios", &p.ios);
  Keep(j, "errors", &p.errors);
  Keep(j, "latency_us", &p.latency_us);
  return p;
}

json ToJson(const DeviceInfo& d) {
  json paths = json::array();
  for (const PathInfo& p : d.paths) paths.push_back(ToJson(p));
  return json{{"path", d.path},
              {"dev_id", d.dev_id},
              {"nsid", d.nsid},
              {"size_bytes", d.size_bytes},
              {"logical_block", d.logical_block},
              {"stable_id", d.stable_id},
              {"subnqn", d.subnqn},
              {"controller", d.controller},
              {"state", d.state},
              {"iopolicy", d.iopolicy},
              {"paths", paths}};
}

DeviceInfo DeviceInfoFromJson(const json& j) {
  DeviceInfo d;
  Keep(j, "path", &d.path);
  Keep(j, "dev_id", &d.dev_id);
  Keep(j, "nsid", &d.nsid);
  Keep(j, "size_bytes", &d.size_bytes);
  Keep(j, "logical_block", &d.logical_block);
  Keep(j, "stable_id", &d.stable_id);
  Keep(j, "subnqn", &d.subnqn);
  Keep(j, "controller", &d.controller);
  Keep(j, "state", &d.state);
  Keep(j, "iopolicy", &d.iopolicy);
  if (auto it = j.find("paths"); it != j.end() && it->is_array()) {
    for (const auto& p : *it) d.paths.push_back(PathInfoFromJson(p));
  }
  return d;
}

json ToJson(const ControllerSummary& c) {
  json devices = json::array();
  for (const auto& d : c.devices) devices.push_back(ToJson(d));
  return json{{"name", c.name},       {"subnqn", c.subnqn}, {"traddr", c.traddr},
              {"trsvcid", c.trsvcid}, {"state", c.state},   {"reconnects", c.reconnects},
              {"cntlid", c.cntlid},   {"owner", c.owner},   {"devices", devices}};
}

ControllerSummary ControllerSummaryFromJson(const json& j) {
  ControllerSummary c;
  Keep(j, "name", &c.name);
  Keep(j, "subnqn", &c.subnqn);
  Keep(j, "traddr", &c.traddr);
  Keep(j, "trsvcid", &c.trsvcid);
  Keep(j, "state", &c.state);
  Keep(j, "reconnects", &c.reconnects);
  Keep(j, "cntlid", &c.cntlid);
  Keep(j, "owner", &c.owner);
  if (auto it = j.find("devices"); it != j.end() && it->is_array()) {
    for (const auto& d : *it) c.devices.push_back(DeviceInfoFromJson(d));
  }
  return c;
}

json ToJson(const ConnectAllArgs& a) {
  json j = ToJson(a.args);
  j["persistent"] = a.persistent;
  j["grace_s"] = a.grace_s;
  j["max_controllers"] = a.max_controllers;
  return j;
}

absl::StatusOr<ConnectAllArgs> ConnectAllArgsFromJson(const json& j) {
  ConnectAllArgs a;
  if (!j.is_object()) return absl::InvalidArgumentError("bad connect-all request: not an object");
  json c = j;
  c["subnqn"] = "nqn.2014-08.org.nvmexpress.discovery";  // checked as a connect otherwise
  if (!j.contains("trsvcid")) c["trsvcid"] = "8009";
  ASSIGN_OR_RETURN(a.args, ConnectArgsFromJson(c));
  for (absl::Status s : {Get(j, "persistent", &a.persistent), Get(j, "grace_s", &a.grace_s),
                         Get(j, "max_controllers", &a.max_controllers)}) {
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("bad connect-all request: ", s.message()));
    }
  }
  RETURN_IF_ERROR(CheckRange("grace_s", a.grace_s, 0, 1 << 30));
  RETURN_IF_ERROR(CheckRange("max_controllers", a.max_controllers, 1, 1024));
  return a;
}

json ToJson(const RecordResult& r) {
  return json{{"subnqn", r.subnqn}, {"traddr", r.traddr}, {"trsvcid", r.trsvcid},
              {"result", r.result}, {"error", r.error},   {"devices", r.devices}};
}

json ToJson(const ConnectAllResult& r) {
  json devices = json::array(), records = json::array();
  for (const auto& d : r.devices) devices.push_back(ToJson(d));
  for (const auto& x : r.records) records.push_back(ToJson(x));
  return json{{"devices", devices},
              {"records", records},
              {"controllers", r.controllers},
              {"controller_errors", r.controller_errors},
              {"discovery_id", r.discovery_id}};
}

ConnectAllResult ConnectAllResultFromJson(const json& j) {
  ConnectAllResult r;
  if (auto it = j.find("devices"); it != j.end() && it->is_array()) {
    for (const auto& d : *it) r.devices.push_back(DeviceInfoFromJson(d));
  }
  if (auto it = j.find("records"); it != j.end() && it->is_array()) {
    for (const auto& x : *it) {
      RecordResult rr;
      Keep(x, "subnqn", &rr.subnqn);
      Keep(x, "traddr", &rr.traddr);
      Keep(x, "trsvcid", &rr.trsvcid);
      Keep(x, "result", &rr.result);
      Keep(x, "error", &rr.error);
      if (auto d = x.find("devices"); d != x.end() && d->is_array()) {
        for (const auto& p : *d) {
          if (p.is_string()) rr.devices.push_back(p.get<std::string>());
        }
      }
      r.records.push_back(std::move(rr));
    }
  }
  for (const char* key : {"controllers", "controller_errors"}) {
    auto& out = std::string(key) == "controllers" ? r.controllers : r.controller_errors;
    if (auto it = j.find(key); it != j.end() && it->is_array()) {
      for (const auto& p : *it) {
        if (p.is_string()) out.push_back(p.get<std::string>());
      }
    }
  }
  Keep(j, "discovery_id", &r.discovery_id);
  return r;
}

json ToJson(const DiscoveryControllerInfo& d) {
  json records = json::array();
  for (const auto& r : d.records) {
    records.push_back(json{{"subnqn", r.subnqn},
                           {"traddr", r.traddr},
                           {"trsvcid", r.trsvcid},
                           {"state", r.state},
                           {"failures", r.failures},
                           {"error", r.error},
                           {"retry_in_s", r.retry_in_s},
                           {"vanishing_for_s", r.vanishing_for_s}});
  }
  return json{{"id", d.id},
              {"traddr", d.traddr},
              {"trsvcid", d.trsvcid},
              {"owner", d.owner},
              {"state", d.state},
              {"error", d.error},
              {"reconnects", d.reconnects},
              {"genctr", d.genctr},
              {"grace_s", d.grace_s},
              {"records", records}};
}

DiscoveryControllerInfo DiscoveryControllerInfoFromJson(const json& j) {
  DiscoveryControllerInfo d;
  Keep(j, "id", &d.id);
  Keep(j, "traddr", &d.traddr);
  Keep(j, "trsvcid", &d.trsvcid);
  Keep(j, "owner", &d.owner);
  Keep(j, "state", &d.state);
  Keep(j, "error", &d.error);
  Keep(j, "reconnects", &d.reconnects);
  Keep(j, "genctr", &d.genctr);
  Keep(j, "grace_s", &d.grace_s);
  if (auto it = j.find("records"); it != j.end() && it->is_array()) {
    for (const auto& x : *it) {
      DiscoveryRecordInfo r;
      Keep(x, "subnqn", &r.subnqn);
      Keep(x, "traddr", &r.traddr);
      Keep(x, "trsvcid", &r.trsvcid);
      Keep(x, "state", &r.state);
      Keep(x, "failures", &r.failures);
      Keep(x, "error", &r.error);
      Keep(x, "retry_in_s", &r.retry_in_s);
      Keep(x, "vanishing_for_s", &r.vanishing_for_s);
      d.records.push_back(std::move(r));
    }
  }
  return d;
}

json ErrorReply(const absl::Status& status) {
  const std::string message(status.message());
  return json{{"ok", false}, {"code", absl::StatusCodeToString(status.code())}, {"error", message}};
}

absl::Status ReplyStatus(const json& reply) {
  if (!reply.is_object()) return absl::DataLossError("reply is not a JSON object");
  if (reply.value("ok", false)) return absl::OkStatus();
  static const std::map<std::string, absl::StatusCode> kCodes = [] {
    std::map<std::string, absl::StatusCode> m;
    for (int c = 1; c <= 16; ++c) {
      const auto code = static_cast<absl::StatusCode>(c);
      m[absl::StatusCodeToString(code)] = code;
    }
    return m;
  }();
  absl::StatusCode code = absl::StatusCode::kUnknown;
  if (auto it = kCodes.find(reply.value("code", std::string())); it != kCodes.end()) {
    code = it->second;
  }
  return absl::Status(code, reply.value("error", std::string("unknown error")));
}

absl::StatusOr<json> ParseObject(std::string_view line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("request is not a JSON object");
  }
  return j;
}

}  // namespace nvmf_ublk::control
