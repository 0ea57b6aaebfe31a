// nvmf-ublkd's control requests: one JSON request in, one reply out (include/nvmf_ublk/control.h),
// dispatched to the Daemon's operations. Split from daemon.cc by responsibility.
#include "absl/strings/str_cat.h"
#include "control/protocol.h"
#include "daemon/daemon.h"
#include "daemon/daemon_parts.h"

namespace nvmf_ublk::daemon {

using nlohmann::json;

json Daemon::Handle(const json& req) {
  // Whatever a client sends, the answer is an error reply, never an exception out of here.
  try {
    return HandleRequest(req);
  } catch (const std::exception& e) {
    return control::ErrorReply(absl::InvalidArgumentError(absl::StrCat("bad request: ", e.what())));
  }
}

json Daemon::HandleRequest(const json& req) {
  // A string field of the request; a value of another type is an error, absent is empty.
  auto field = [&req](const char* key) -> absl::StatusOr<std::string> {
    auto it = req.find(key);
    if (it == req.end() || it->is_null()) return std::string();
    if (!it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("request field '", key, "' must be a string"));
    }
    return it->get<std::string>();
  };
  if (!req.is_object()) {
    return control::ErrorReply(absl::InvalidArgumentError("request is not a JSON object"));
  }
  absl::StatusOr<std::string> cmd_field = field("cmd");
  if (!cmd_field.ok()) return control::ErrorReply(cmd_field.status());
  const std::string cmd = *cmd_field;
  auto devices_reply = [](const absl::StatusOr<std::vector<DeviceInfo>>& r) {
    if (!r.ok()) return control::ErrorReply(r.status());
    json devs = json::array();
    for (const auto& d : *r) devs.push_back(control::ToJson(d));
    return json{{"ok", true}, {"devices", devs}};
  };
  if (cmd == "connect") {
    auto args = control::ConnectArgsFromJson(req);
    if (!args.ok()) return control::ErrorReply(args.status());
    auto r = Connect(*args);
    if (!r.ok()) return control::ErrorReply(r.status());
    json reply = devices_reply(r->devices);
    reply["already_connected"] = r->already_connected;
    return reply;
  }
  if (cmd == "connect-all") {
    auto args = control::ConnectAllArgsFromJson(req);
    if (!args.ok()) return control::ErrorReply(args.status());
    auto r = ConnectAll(*args);
    if (!r.ok()) return control::ErrorReply(r.status());
    json reply = control::ToJson(*r);
    reply["ok"] = true;
    return reply;
  }
  if (cmd == "disconnect") {
    absl::StatusOr<std::string> nqn_field = field("subnqn"), dev_field = field("device"),
                                addr_field = field("traddr"), svc_field = field("trsvcid");
    for (const auto* f : {&nqn_field, &dev_field, &addr_field, &svc_field}) {
      if (!f->ok()) return control::ErrorReply(f->status());
    }
    const std::string nqn = *nqn_field, dev = *dev_field;
    if (nqn.empty() == dev.empty()) {
      return control::ErrorReply(absl::InvalidArgumentError("disconnect needs subnqn or device"));
    }
    if (!dev.empty() && (!addr_field->empty() || !svc_field->empty())) {
      return control::ErrorReply(absl::InvalidArgumentError(
          "disconnect: traddr/trsvcid select paths of a subsystem (subnqn), not of a device"));
    }
    if (addr_field->empty() && !svc_field->empty()) {
      return control::ErrorReply(
          absl::InvalidArgumentError("disconnect: trsvcid (-s) needs traddr (-a)"));
    }
    return devices_reply(Disconnect(nqn, dev, *addr_field, *svc_field));
  }
  if (cmd == "set-iopolicy") {
    absl::StatusOr<std::string> dev_field = field("device"), pol_field = field("iopolicy");
    if (!dev_field.ok()) return control::ErrorReply(dev_field.status());
    if (!pol_field.ok()) return control::ErrorReply(pol_field.status());
    if (dev_field->empty() || pol_field->empty()) {
      return control::ErrorReply(
          absl::InvalidArgumentError("set-iopolicy needs device and iopolicy"));
    }
    if (absl::Status s = SetIoPolicy(*dev_field, *pol_field); !s.ok()) {
      return control::ErrorReply(s);
    }
    return json{{"ok", true}};
  }
  if (cmd == "disconnect-all") {
    absl::StatusOr<std::string> owner = field("owner");
    if (!owner.ok()) return control::ErrorReply(owner.status());
    return devices_reply(DisconnectAll(*owner));
  }
  if (cmd == "list") {
    json ctrls = json::array(), devs = json::array();
    for (const auto& c : List()) ctrls.push_back(control::ToJson(c));
    for (const auto& d : ListDevices()) devs.push_back(control::ToJson(d));
    json dcs = json::array();
    for (const auto& d : ListDiscovery()) dcs.push_back(control::ToJson(d));
    return json{{"ok", true}, {"controllers", ctrls}, {"devices", devs}, {"discovery", dcs}};
  }
  return control::ErrorReply(
      absl::InvalidArgumentError(absl::StrCat("unknown command '", cmd, "'")));
}

}  // namespace nvmf_ublk::daemon
