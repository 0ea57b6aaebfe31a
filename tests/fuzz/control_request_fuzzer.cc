// Fuzzes the daemon's control protocol (include/nvmf_ublk/control.h): each input is one request
// line as a client would send it, parsed (control::ParseObject) and handled by a real Daemon whose
// ublk driver is absent, so connect requests end at that check and nothing reaches the network.
// Invariant: every line gets a reply object carrying a boolean "ok", and nothing throws or crashes
// (the daemon aborted on a field of the wrong JSON type before).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/log.h"
#include "control/protocol.h"
#include "daemon/daemon.h"

namespace {

#define FUZZ_CHECK(cond) \
  if (!(cond)) __builtin_trap()

std::unique_ptr<nvmf_ublk::daemon::Daemon> g_daemon;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  nvmf_ublk::SetMinLogLevel(nvmf_ublk::LogLevel::kFatal);
  nvmf_ublk::daemon::DaemonOptions o;
  o.state_dir = "/tmp/nvmf-ublk-control-fuzzer-" + std::to_string(getpid());
  mkdir(o.state_dir.c_str(), 0700);
  o.reactors = 1;
  o.ublk_control = "/nonexistent/ublk-control";
  auto d = nvmf_ublk::daemon::Daemon::Create(o);
  if (!d.ok()) __builtin_trap();
  g_daemon = std::move(*d);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto req = nvmf_ublk::control::ParseObject(line);
  if (!req.ok()) return 0;
  const nlohmann::json reply = g_daemon->Handle(*req);
  FUZZ_CHECK(reply.is_object());
  auto ok = reply.find("ok");
  FUZZ_CHECK(ok != reply.end() && ok->is_boolean());
  (void)nvmf_ublk::control::ReplyStatus(reply);
  return 0;
}
