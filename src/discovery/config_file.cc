#include "discovery/config_file.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "nvme/spec.h"

namespace nvmf_ublk::discovery {

std::string NvmeConfigDir() {
  const char* env = std::getenv("NVMF_UBLK_NVME_CONFIG_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string("/etc/nvme");
}

absl::StatusOr<std::vector<ConfLine>> SplitConfLines(std::string_view text,
                                                     std::string_view origin) {
  std::vector<ConfLine> out;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    ConfLine cl;
    cl.line = line_no;
    std::string cur;
    bool in_arg = false;
    char quote = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quote != 0) {
        if (c == quote) {
          quote = 0;
        } else if (c == '\\' && quote == '"' && i + 1 < line.size()) {
          cur += line[++i];
        } else {
          cur += c;
        }
        continue;
      }
      if (c == '#') break;  // a comment runs to the end of the line
      if (c == ' ' || c == '\t' || c == '\r') {
        if (in_arg) cl.args.push_back(std::move(cur));
        cur.clear();
        in_arg = false;
        continue;
      }
      in_arg = true;
      if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '\\' && i + 1 < line.size()) {
        cur += line[++i];
      } else {
        cur += c;
      }
    }
    if (quote != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(origin), ":", line_no, ": unterminated ", std::string(1, quote), " quote"));
    }
    if (in_arg) cl.args.push_back(std::move(cur));
    if (!cl.args.empty()) out.push_back(std::move(cl));
    if (end == text.size()) break;
  }
  return out;
}

namespace {

using nlohmann::json;

absl::Status StrField(const json& o, const char* key, const std::string& where, std::string* out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".", key, " must be a string"));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status IntField(const json& o, const char* key, const std::string& where, int* out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer() || it->get<int64_t>() < -1 || it->get<int64_t>() > (1 << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".", key, " must be an integer >= -1, not ", it->dump()));
  }
  *out = static_cast<int>(it->get<int64_t>());
  return absl::OkStatus();
}

absl::Status BoolField(const json& o, const char* key, const std::string& where, int* out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".", key, " must be true or false"));
  }
  *out = it->get<bool>() ? 1 : 0;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<JsonPort>> ParseJsonConfig(std::string_view text,
                                                      std::string_view origin) {
  const std::string o(origin);
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(o, " is not valid JSON"));
  // libnvme writes an array of hosts; {"hosts": [...]} is read too.
  const json* hosts = &j;
  if (j.is_object()) {
    auto it = j.find("hosts");
    if (it == j.end()) return std::vector<JsonPort>{};
    hosts = &*it;
  }
  if (!hosts->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(o, ": expected an array of hosts"));
  }
  std::vector<JsonPort> out;
  for (size_t h = 0; h < hosts->size(); ++h) {
    const json& host = (*hosts)[h];
    const std::string hw = absl::StrCat(o, ": hosts[", h, "]");
    if (!host.is_object()) return absl::InvalidArgumentError(absl::StrCat(hw, " is not an object"));
    JsonPort base;
    for (absl::Status s :
         {StrField(host, "hostnqn", hw, &base.hostnqn), StrField(host, "hostid", hw, &base.hostid),
          StrField(host, "dhchap_key", hw, &base.dhchap_key)}) {
      if (!s.ok()) return s;
    }
    auto subs = host.find("subsystems");
    if (subs == host.end()) continue;
    if (!subs->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(hw, ".subsystems must be an array"));
    }
    for (size_t si = 0; si < subs->size(); ++si) {
      const json& sub = (*subs)[si];
      const std::string sw = absl::StrCat(hw, ".subsystems[", si, "]");
      if (!sub.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(sw, " is not an object"));
      }
      JsonPort sb = base;
      if (absl::Status s = StrField(sub, "nqn", sw, &sb.subnqn); !s.ok()) return s;
      auto ports = sub.find("ports");
      if (ports == sub.end()) continue;
      if (!ports->is_array()) {
        return absl::InvalidArgumentError(absl::StrCat(sw, ".ports must be an array"));
      }
      for (size_t pi = 0; pi < ports->size(); ++pi) {
        const json& p = (*ports)[pi];
        JsonPort port = sb;
        port.where = absl::StrCat(sw, ".ports[", pi, "]");
        const std::string& pw = port.where;
        if (!p.is_object()) {
          return absl::InvalidArgumentError(absl::StrCat(pw, " is not an object"));
        }
        int disc = -1;
        for (absl::Status s :
             {StrField(p, "transport", pw, &port.transport),
              StrField(p, "traddr", pw, &port.traddr), StrField(p, "trsvcid", pw, &port.trsvcid),
              StrField(p, "host_traddr", pw, &port.host_traddr),
              StrField(p, "host_iface", pw, &port.host_iface),
              IntField(p, "nr_io_queues", pw, &port.nr_io_queues),
              IntField(p, "queue_size", pw, &port.queue_size),
              IntField(p, "keep_alive_tmo", pw, &port.keep_alive_tmo),
              IntField(p, "reconnect_delay", pw, &port.reconnect_delay),
              IntField(p, "ctrl_loss_tmo", pw, &port.ctrl_loss_tmo),
              IntField(p, "fast_io_fail_tmo", pw, &port.fast_io_fail_tmo),
              IntField(p, "tos", pw, &port.tos), BoolField(p, "hdr_digest", pw, &port.hdr_digest),
              BoolField(p, "data_digest", pw, &port.data_digest),
              BoolField(p, "disable_sqflow", pw, &port.disable_sqflow),
              BoolField(p, "persistent", pw, &port.persistent),
              StrField(p, "dhchap_key", pw, &port.dhchap_key),
              StrField(p, "dhchap_ctrl_key", pw, &port.dhchap_ctrl_key),
              BoolField(p, "discovery", pw, &disc)}) {
          if (!s.ok()) return s;
        }
        if (port.traddr.empty()) {
          return absl::InvalidArgumentError(absl::StrCat(pw, " has no traddr"));
        }
        if (port.transport != "tcp") continue;  // another transport: not ours to connect
        port.discovery = disc == 1 || port.subnqn.empty() || port.subnqn == nvme::kDiscoveryNqn;
        out.push_back(std::move(port));
      }
    }
  }
  return out;
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    const int e = errno;
    if (e == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    return absl::PermissionDeniedError(absl::StrCat(path, ": ", std::strerror(e)));
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace nvmf_ublk::discovery
