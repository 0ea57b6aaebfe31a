#include "discovery/host_identity.h"

// libnvme 1.3 headers have no extern "C" guards.
extern "C" {
#include <nvme/fabrics.h>
}

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status.h"

namespace nvmf_ublk::discovery {
namespace {

std::string Take(char* s) {
  if (s == nullptr) return {};
  std::string out(s);
  free(s);
  return std::string(absl::StripAsciiWhitespace(out));
}

}  // namespace

absl::StatusOr<std::array<uint8_t, 16>> ParseUuid(std::string_view text) {
  std::array<uint8_t, 16> out{};
  const std::string t(text);
  static constexpr int kDash[] = {8, 13, 18, 23};
  if (t.size() != 36) {
    return absl::InvalidArgumentError(absl::StrCat("host ID '", t, "' is not a UUID"));
  }
  int b = 0;
  for (size_t i = 0; i < t.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (t[i] != '-')
        return absl::InvalidArgumentError(absl::StrCat("host ID '", t, "' is not a UUID"));
      ++i;
      continue;
    }
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(t[i]), lo = hex(t[i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(absl::StrCat("host ID '", t, "' is not a UUID"));
    }
    out[b++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  (void)kDash;
  return out;
}

std::string FormatUuid(const std::array<uint8_t, 16>& b) {
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                         b[12], b[13], b[14], b[15]);
}

absl::StatusOr<HostIdentity> ResolveHostIdentity(std::string_view hostnqn,
                                                 std::string_view hostid) {
  HostIdentity id;
  id.hostnqn = std::string(hostnqn);
  if (id.hostnqn.empty()) id.hostnqn = Take(nvmf_hostnqn_from_file());
  if (id.hostnqn.empty()) id.hostnqn = Take(nvmf_hostnqn_generate());
  if (id.hostnqn.empty()) {
    return absl::FailedPreconditionError(
        "no host NQN: pass -q/--hostnqn or create /etc/nvme/hostnqn (nvme gen-hostnqn)");
  }
  if (id.hostnqn.rfind("nqn.", 0) != 0 || id.hostnqn.size() > 223) {
    return absl::InvalidArgumentError(
        absl::StrCat("host NQN '", id.hostnqn, "' is not a valid NQN"));
  }
  std::string hid(hostid);
  if (hid.empty()) hid = Take(nvmf_hostid_from_file());
  if (hid.empty()) {
    // nvme-cli's rule: the UUID of a "...:uuid:<uuid>" host NQN is the host ID.
    const size_t pos = id.hostnqn.find(":uuid:");
    if (pos != std::string::npos) hid = id.hostnqn.substr(pos + 6);
  }
  if (hid.empty()) {
    return absl::FailedPreconditionError(
        "no host ID: pass -I/--hostid or create /etc/nvme/hostid (uuidgen)");
  }
  ASSIGN_OR_RETURN(id.hostid_bytes, ParseUuid(hid));
  id.hostid = FormatUuid(id.hostid_bytes);
  return id;
}

}  // namespace nvmf_ublk::discovery
