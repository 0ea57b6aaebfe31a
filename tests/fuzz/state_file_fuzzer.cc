// Fuzzes the daemon's state file reader (src/daemon/state_file.h): the daemon parses this file at
// every start, so a damaged one must give a clear error, never a crash or a crash loop.
// Invariants: ParseState returns a State or an error for any text; a State's device records hold
// in-range values, and its connection arguments pass the same checks as a connect request.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/log.h"
#include "control/protocol.h"
#include "daemon/state_file.h"

namespace {

#define FUZZ_CHECK(cond) \
  if (!(cond)) __builtin_trap()

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  nvmf_ublk::SetMinLogLevel(nvmf_ublk::LogLevel::kFatal);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto state = nvmf_ublk::daemon::ParseState(text, "state.json");
  if (!state.ok()) return 0;
  for (const auto& c : state->connections) {
    FUZZ_CHECK(nvmf_ublk::control::ConnectArgsFromJson(nvmf_ublk::control::ToJson(c.args)).ok());
    for (const auto& d : c.devices) FUZZ_CHECK(d.dev_id >= -1 && d.dev_id <= (1 << 20));
  }
  return 0;
}
