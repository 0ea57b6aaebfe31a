#include "base/mounts.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk {
namespace {

TEST(Mounts, ParsesMountInfoWithOptionalFieldsAndEscapes) {
  const std::string text =
      "22 1 0:21 / /proc rw,nosuid shared:5 - proc proc rw\n"
      "98 29 259:3 / /mnt/my\\040data rw,relatime shared:40 master:1 - ext4 "
      "/dev/disk/by-id/nvmf-ublk-eui.0011 rw\n"
      "99 98 259:4 / /mnt/my\\040data/inner rw - xfs /dev/ublkb0p1 rw\n"
      "garbage line\n";
  const std::vector<Mount> m = ParseMountInfo(text);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[1].mountpoint, "/mnt/my data");
  EXPECT_EQ(m[1].source, "/dev/disk/by-id/nvmf-ublk-eui.0011");
  EXPECT_EQ(m[1].major, 259u);
  EXPECT_EQ(m[1].minor, 3u);
  EXPECT_EQ(m[2].mountpoint, "/mnt/my data/inner");
  EXPECT_EQ(m[2].source, "/dev/ublkb0p1");
}

TEST(Mounts, NoSuchDeviceHasNoMounts) { EXPECT_TRUE(MountsOfDevice(987654).empty()); }

// Without any ublk disk, none of this machine's mounts (/, /proc, tmpfs...) counts as one.
TEST(Mounts, OrdinaryMountsAreNotUblk) {
  if (std::filesystem::exists("/sys/class/block/ublkb0")) GTEST_SKIP() << "ublk disks present";
  ASSERT_FALSE(ParseMountInfo("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n").empty());
  EXPECT_TRUE(MountsOfAnyUblkDevice().empty());
}

}  // namespace
}  // namespace nvmf_ublk
