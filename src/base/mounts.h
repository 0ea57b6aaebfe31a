// Filesystems mounted on ublk block devices, as this process's mount namespace sees them: so that
// `disconnect` never pulls a device from under a mounted filesystem (which would lose its dirty
// data), `disconnect-all --unmount` (the shutdown unit) can unmount first, and the daemon can drop
// the copies of such mounts it inherits. Matched by device number, whatever path mount(8) was
// given (/dev/ublkbN, a /dev/disk/by-id link, a partition).
#ifndef NVMF_UBLK_BASE_MOUNTS_H_
#define NVMF_UBLK_BASE_MOUNTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace nvmf_ublk {

struct Mount {
  std::string mountpoint;  // unescaped (mountinfo's \040 is a blank)
  std::string source;      // what mount(8) was given, e.g. /dev/disk/by-id/nvmf-ublk-eui.…
  unsigned major = 0;
  unsigned minor = 0;
};

// Parses /proc/<pid>/mountinfo text.
std::vector<Mount> ParseMountInfo(const std::string& text);

// Mounts of /dev/ublkb<dev_id> or its partitions in this process's namespace, deepest first.
// The device numbers come from sysfs (/sys/class/block/ublkb<N>[pP]/dev).
std::vector<Mount> MountsOfDevice(int dev_id);
// Mounts of any ublk block device or partition (/sys/dev/block/MAJ:MIN names ublkb*), deepest
// first.
std::vector<Mount> MountsOfAnyUblkDevice();

// umount(2) of each (deepest first); a mount that is already gone counts as done. Returns the
// first failure (e.g. busy), with the mount point in the message.
absl::Status Unmount(const std::vector<Mount>& mounts);

}  // namespace nvmf_ublk

#endif  // NVMF_UBLK_BASE_MOUNTS_H_
