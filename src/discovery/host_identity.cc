#include "discovery/host_identity.h"

// libnvme 1.3 headers have no extern "C" guards.
extern "C" {
#include <nvme/fabrics.h>
}

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status.h"
#include "discovery/config_file.h"

namespace nvmf_ublk::discovery {
namespace {

std::string Take(char* s) {
  if (s == nullptr) return {};
  std::string out(s);
  free(s);
  return std::string(absl::StripAsciiWhitespace(out));
}

// The first line of a host file, trimmed; empty when absent or empty.
std::string ReadHostFile(const char* name) {
  auto text = ReadTextFile(NvmeConfigDir() + "/" + name);
  if (!text.ok()) return {};
  std::string line = text->substr(0, text->find('\n'));
  return std::string(absl::StripAsciiWhitespace(line));
}

std::string RandomUuid() {
  std::random_device rd;
  std::array<uint8_t, 16> b{};
  for (auto& x : b) x = static_cast<uint8_t>(rd());
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return FormatUuid(b);
}

}  // namespace

std::string GenerateHostNqn() {
  std::string nqn = Take(nvmf_hostnqn_generate());
  if (nqn.empty()) nqn = "nqn.2014-08.org.nvmexpress:uuid:" + RandomUuid();
  return nqn;
}

absl::StatusOr<std::vector<std::string>> SaveGeneratedIdentity(const HostIdentity& id) {
  std::vector<std::string> written;
  const std::string dir = NvmeConfigDir();
  if (!id.nqn_generated && !id.id_generated) return written;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, absl::StrCat("create ", dir));
  }
  for (const auto& [generated, name, value] : {std::tuple{id.nqn_generated, "hostnqn", id.hostnqn},
                                               std::tuple{id.id_generated, "hostid", id.hostid}}) {
    if (!generated) continue;
    const std::string path = absl::StrCat(dir, "/", name);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) continue;  // written meanwhile by someone else: theirs stays
      return ErrnoToStatus(errno, absl::StrCat("create ", path));
    }
    const std::string text = value + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const int err = errno;
    ::close(fd);
    if (!ok) {
      ::unlink(path.c_str());
      return ErrnoToStatus(err, absl::StrCat("write ", path));
    }
    written.push_back(path);
  }
  return written;
}

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
  if (id.hostnqn.empty()) id.hostnqn = ReadHostFile("hostnqn");
  if (id.hostnqn.empty()) {
    id.hostnqn = GenerateHostNqn();
    id.nqn_generated = true;
  }
  if (id.hostnqn.rfind("nqn.", 0) != 0 || id.hostnqn.size() > 223) {
    return absl::InvalidArgumentError(
        absl::StrCat("host NQN '", id.hostnqn, "' is not a valid NQN"));
  }
  std::string hid(hostid);
  if (hid.empty()) hid = ReadHostFile("hostid");
  if (hid.empty()) {
    // nvme-cli's rule: the UUID of a "...:uuid:<uuid>" host NQN is the host ID; else a new one.
    const size_t pos = id.hostnqn.find(":uuid:");
    hid = pos != std::string::npos ? id.hostnqn.substr(pos + 6) : RandomUuid();
    // Worth saving only for this host's own NQN (from its file or generated), not for one given
    // on the command line.
    id.id_generated = hostnqn.empty();
  }
  ASSIGN_OR_RETURN(id.hostid_bytes, ParseUuid(hid));
  id.hostid = FormatUuid(id.hostid_bytes);
  return id;
}

}  // namespace nvmf_ublk::discovery
