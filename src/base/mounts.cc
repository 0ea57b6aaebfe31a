#include "base/mounts.h"

#include <dirent.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace nvmf_ublk {
namespace {

// mountinfo escapes blank, tab, newline and backslash as \ooo (octal).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (oct.size() == 3 &&
          std::all_of(oct.begin(), oct.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out += static_cast<char>(std::stoi(oct, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

bool ReadDevNumber(const std::string& path, unsigned* major, unsigned* minor) {
  std::ifstream in(path);
  char colon = 0;
  return static_cast<bool>(in >> *major >> colon >> *minor) && colon == ':';
}

std::vector<Mount> OwnMounts() {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  return ParseMountInfo(text.str());
}

void DeepestFirst(std::vector<Mount>* mounts) {
  std::stable_sort(mounts->begin(), mounts->end(), [](const Mount& a, const Mount& b) {
    return a.mountpoint.size() > b.mountpoint.size();
  });
}

}  // namespace

std::vector<Mount> ParseMountInfo(const std::string& text) {
  std::vector<Mount> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
    std::istringstream in(line);
    std::string id, parent, dev, root, mountpoint, field;
    if (!(in >> id >> parent >> dev >> root >> mountpoint)) continue;
    while (in >> field && field != "-") {
    }
    std::string fstype, source;
    in >> fstype >> source;
    Mount m;
    char colon = 0;
    std::istringstream devs(dev);
    if (!(devs >> m.major >> colon >> m.minor) || colon != ':') continue;
    m.mountpoint = Unescape(mountpoint);
    m.source = Unescape(source);
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<Mount> MountsOfDevice(int dev_id) {
  const std::string name = absl::StrCat("ublkb", dev_id);
  std::set<std::pair<unsigned, unsigned>> devs;
  unsigned ma = 0, mi = 0;
  if (ReadDevNumber(absl::StrCat("/sys/class/block/", name, "/dev"), &ma, &mi)) {
    devs.insert({ma, mi});
  }
  if (DIR* d = ::opendir(absl::StrCat("/sys/class/block/", name).c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string part = e->d_name;
      if (part.rfind(name + "p", 0) != 0) continue;
      if (ReadDevNumber(absl::StrCat("/sys/class/block/", name, "/", part, "/dev"), &ma, &mi)) {
        devs.insert({ma, mi});
      }
    }
    ::closedir(d);
  }
  std::vector<Mount> out;
  for (Mount& m : OwnMounts()) {
    if (devs.count({m.major, m.minor})) out.push_back(std::move(m));
  }
  DeepestFirst(&out);  // nested mounts come off before their parents
  return out;
}

std::vector<Mount> MountsOfAnyUblkDevice() {
  std::vector<Mount> out;
  for (Mount& m : OwnMounts()) {
    if (m.major == 0) continue;  // no block device (proc, tmpfs, overlay...)
    char target[256];
    const std::string link = absl::StrCat("/sys/dev/block/", m.major, ":", m.minor);
    const ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = 0;
    const std::string name = std::string(target).substr(std::string(target).rfind('/') + 1);
    if (name.rfind("ublkb", 0) == 0) out.push_back(std::move(m));
  }
  DeepestFirst(&out);
  return out;
}

absl::Status Unmount(const std::vector<Mount>& mounts) {
  for (const Mount& m : mounts) {
    if (::umount2(m.mountpoint.c_str(), UMOUNT_NOFOLLOW) != 0 && errno != EINVAL &&
        errno != ENOENT) {
      return ErrnoToStatus(errno, absl::StrCat("unmount ", m.mountpoint, " (", m.source, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace nvmf_ublk
