#include "control/published_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace nvmf_ublk::control {
namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;

// Printable ASCII except what udev's property syntax or a shell would treat specially.
std::string Clean(const std::string& s, bool blanks_to_underscore) {
  std::string out;
  for (const char c : s) {
    const bool printable =
        c > 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '\\' && c != '`' && c != '$';
    if (c == ' ') {
      out += blanks_to_underscore ? '_' : ' ';
    } else {
      out += printable ? c : '_';
    }
  }
  return out;
}

// udev's ID_MODEL_ENC: blanks and other unsafe bytes as \xNN.
std::string Encode(const std::string& s) {
  std::string out;
  for (const char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u > 0x20 && u < 0x7f && c != '"' && c != '\'' && c != '\\' && c != '`' && c != '$') {
      out += c;
    } else {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    }
  }
  return out;
}

bool IsHex(const std::string& s, size_t len) {
  if (s.size() != len) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string ToJsonText(const PublishedDevice& d) {
  return json{{"version", kFormatVersion},
              {"dev_id", d.dev_id},
              {"subnqn", d.subnqn},
              {"nsid", d.nsid},
              {"nguid", d.nguid},
              {"eui64", d.eui64},
              {"uuid", d.uuid},
              {"model", d.model},
              {"serial", d.serial},
              {"firmware", d.firmware}}
             .dump(2) +
         "\n";
}

absl::StatusOr<PublishedDevice> PublishedDeviceFromJson(const std::string& text) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::DataLossError("not a JSON object");
  PublishedDevice d;
  try {
    if (j.value("version", 0) != kFormatVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("format version ", j.value("version", 0), ", expected ", kFormatVersion));
    }
    d.dev_id = j.value("dev_id", -1);
    d.subnqn = j.value("subnqn", std::string());
    d.nsid = j.value("nsid", 0u);
    d.nguid = j.value("nguid", std::string());
    d.eui64 = j.value("eui64", std::string());
    d.uuid = j.value("uuid", std::string());
    d.model = j.value("model", std::string());
    d.serial = j.value("serial", std::string());
    d.firmware = j.value("firmware", std::string());
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("bad field: ", e.what()));
  }
  // Identifiers end up in /dev paths: take them only in their exact shapes.
  if (!d.nguid.empty() && !IsHex(d.nguid, 32)) d.nguid.clear();
  if (!d.eui64.empty() && !IsHex(d.eui64, 16)) d.eui64.clear();
  if (!d.uuid.empty() && !IsUuid(d.uuid)) d.uuid.clear();
  return d;
}

std::string PublishedDevicePath(const std::string& state_dir, int dev_id) {
  return absl::StrCat(state_dir, "/devices/ublkb", dev_id, ".json");
}

absl::Status WritePublishedDevice(const std::string& state_dir, const PublishedDevice& d) {
  const std::string dir = state_dir + "/devices";
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, absl::StrCat("mkdir ", dir));
  }
  const std::string path = PublishedDevicePath(state_dir, d.dev_id);
  const std::string tmp = path + ".tmp";
  const std::string text = ToJsonText(d);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("create ", tmp));
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    ::unlink(tmp.c_str());
    return ErrnoToStatus(n < 0 ? err : EIO, absl::StrCat("write ", tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("rename ", tmp));
  }
  return absl::OkStatus();
}

void RemovePublishedDevice(const std::string& state_dir, int dev_id) {
  ::unlink(PublishedDevicePath(state_dir, dev_id).c_str());
}

std::vector<std::pair<std::string, std::string>> UdevProperties(const PublishedDevice& d) {
  std::vector<std::pair<std::string, std::string>> p;
  p.emplace_back("NVMF_UBLK_SUBNQN", Clean(d.subnqn, true));
  p.emplace_back("NVMF_UBLK_NSID", absl::StrCat(d.nsid));
  const std::string eui = !d.nguid.empty() ? d.nguid : d.eui64;
  if (!eui.empty()) p.emplace_back("NVMF_UBLK_EUI", eui);
  if (!d.uuid.empty()) p.emplace_back("NVMF_UBLK_UUID", d.uuid);
  const std::string model = Clean(d.model, true);
  const std::string serial = Clean(d.serial, true);
  if (!model.empty()) {
    p.emplace_back("ID_MODEL", model);
    p.emplace_back("ID_MODEL_ENC", Encode(d.model));
  }
  if (!serial.empty()) {
    p.emplace_back("ID_SERIAL_SHORT", serial);
    p.emplace_back("ID_SERIAL", absl::StrCat(model, "_", serial, "_", d.nsid));
  }
  if (!d.firmware.empty()) p.emplace_back("ID_REVISION", Clean(d.firmware, true));
  if (!eui.empty()) {
    p.emplace_back("ID_WWN", "eui." + eui);
  } else if (!d.uuid.empty()) {
    p.emplace_back("ID_WWN", "uuid." + d.uuid);
  }
  return p;
}

int UblkDevIdFromName(const std::string& name) {
  std::string s = name;
  if (s.rfind("/dev/", 0) == 0) s = s.substr(5);
  if (s.rfind("ublkb", 0) != 0) return -1;
  s = s.substr(5);
  size_t i = 0;
  int64_t id = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9' && id < (1 << 20))
    id = id * 10 + (s[i++] - '0');
  if (i == 0 || id >= (1 << 20)) return -1;
  if (i < s.size()) {  // a partition: p<digits>
    if (s[i] != 'p' || i + 1 == s.size()) return -1;
    for (size_t k = i + 1; k < s.size(); ++k) {
      if (s[k] < '0' || s[k] > '9') return -1;
    }
  }
  return static_cast<int>(id);
}

}  // namespace nvmf_ublk::control
