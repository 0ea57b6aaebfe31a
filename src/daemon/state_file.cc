#include "daemon/state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "control/protocol.h"

namespace nvmf_ublk::daemon {

using nlohmann::json;

absl::StatusOr<State> LoadState(const std::string& path) {
  State state;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return state;
    return ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseState(text.str(), path);
}

namespace {

// An integer field of a device record within [lo, hi]; absent: `*out` stays.
template <typename T>
absl::Status IntField(const json& o, const char* key, int64_t lo, int64_t hi, T* out) {
  auto it = o.find(key);
  if (it == o.end()) return absl::OkStatus();
  if (!it->is_number_integer() ||
      (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(hi)) || it->get<int64_t>() < lo ||
      it->get<int64_t>() > hi) {
    return absl::DataLossError(
        absl::StrCat(key, " ", it->dump(), " is not an integer in [", lo, ", ", hi, "]"));
  }
  *out = static_cast<T>(it->get<int64_t>());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<State> ParseState(std::string_view text, const std::string& origin) {
  const std::string& path = origin;
  State state;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(path, " is not valid JSON"));
  }
  const auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || version->get<int64_t>() < 1) {
    return absl::DataLossError(absl::StrCat(path, " has no valid format version"));
  }
  if (version->get<int64_t>() > kStateFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " has format version ", version->get<int64_t>(),
                     "; this nvmf-ublkd reads version ", kStateFormatVersion,
                     " at most. A newer nvmf-ublkd wrote it and its devices may still "
                     "exist: run that version again (this one touches nothing)"));
  }
  auto conns_it = j.find("connections");
  const json no_conns = json::array();
  const json& conns = conns_it != j.end() && conns_it->is_array() ? *conns_it : no_conns;
  size_t ci = 0;
  for (const auto& c : conns) {
    ++ci;
    if (!c.is_object() || !c.contains("args")) continue;
    auto args = control::ConnectArgsFromJson(c["args"]);
    if (!args.ok()) {
      return absl::DataLossError(absl::StrCat(path, ": ", args.status().message()));
    }
    ConnectionRecord rec{*args, {}};
    if (auto devs = c.find("devices"); devs != c.end() && devs->is_array()) {
      size_t di = 0;
      for (const auto& d : *devs) {
        ++di;
        const std::string where = absl::StrCat(path, ": connection ", ci, " device ", di, ": ");
        if (!d.is_object()) return absl::DataLossError(absl::StrCat(where, "not a JSON object"));
        DeviceRecord dev{0, -1, ""};
        for (absl::Status s : {IntField(d, "nsid", 0, 0xFFFFFFFF, &dev.nsid),
                               IntField(d, "dev_id", -1, 1 << 20, &dev.dev_id)}) {
          if (!s.ok()) return absl::DataLossError(absl::StrCat(where, s.message()));
        }
        if (auto id = d.find("stable_id"); id != d.end()) {
          if (!id->is_string()) {
            return absl::DataLossError(absl::StrCat(where, "stable_id is not a string"));
          }
          dev.stable_id = id->get<std::string>();
        }
        if (auto pol = d.find("iopolicy"); pol != d.end() && pol->is_string()) {
          dev.iopolicy = pol->get<std::string>();  // an unknown one falls back to the default
        }
        rec.devices.push_back(std::move(dev));
      }
    }
    state.connections.push_back(std::move(rec));
  }
  if (auto dcs = j.find("discovery"); dcs != j.end() && dcs->is_array()) {
    size_t di = 0;
    for (const auto& d : *dcs) {
      ++di;
      const std::string where = absl::StrCat(path, ": discovery controller ", di, ": ");
      if (!d.is_object() || !d.contains("args") || !d.contains("id") || !d["id"].is_string()) {
        return absl::DataLossError(absl::StrCat(where, "needs id and args"));
      }
      auto args = control::ConnectAllArgsFromJson(d["args"]);
      if (!args.ok()) return absl::DataLossError(absl::StrCat(where, args.status().message()));
      DiscoveryControllerRecord rec{d["id"].get<std::string>(), *args, ""};
      if (auto o = d.find("owner"); o != d.end() && o->is_string())
        rec.owner = o->get<std::string>();
      state.discovery.push_back(std::move(rec));
    }
  }
  return state;
}

int StateFormatVersionFor(const State& state) {
  std::set<int> seen;
  for (const auto& c : state.connections) {
    std::set<int> here;
    for (const auto& d : c.devices) here.insert(d.dev_id);
    for (int id : here) {
      if (!seen.insert(id).second) return 2;
    }
  }
  return 1;
}

absl::Status SaveState(const std::string& path, const State& state) {
  json conns = json::array();
  for (const auto& c : state.connections) {
    json devs = json::array();
    for (const auto& d : c.devices) {
      json dev = {{"nsid", d.nsid}, {"dev_id", d.dev_id}, {"stable_id", d.stable_id}};
      if (!d.iopolicy.empty()) dev["iopolicy"] = d.iopolicy;
      devs.push_back(std::move(dev));
    }
    conns.push_back({{"args", control::ToJson(c.args)}, {"devices", devs}});
  }
  json top{{"version", StateFormatVersionFor(state)}, {"connections", conns}};
  if (!state.discovery.empty()) {
    json dcs = json::array();
    for (const auto& d : state.discovery) {
      dcs.push_back({{"id", d.id}, {"args", control::ToJson(d.args)}, {"owner", d.owner}});
    }
    top["discovery"] = std::move(dcs);
  }
  const std::string text = top.dump(2) + "\n";
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("create ", tmp));
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int werr = errno;
  if (n != static_cast<ssize_t>(text.size()) || ::fsync(fd) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoToStatus(n < 0 ? werr : EIO, absl::StrCat("write ", tmp));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace nvmf_ublk::daemon
