#include "control/published_device.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvmf_ublk::control {
namespace {

using ::nvmf_ublk::testing::IsOk;
using ::nvmf_ublk::testing::StatusIs;

PublishedDevice Sample() {
  PublishedDevice d;
  d.dev_id = 3;
  d.subnqn = "nqn.2026-01.io.test:sub";
  d.nsid = 2;
  d.nguid = "00112233445566778899aabbccddeeff";
  d.eui64 = "0102030405060708";
  d.uuid = "12345678-9abc-def0-1234-56789abcdef0";
  d.model = "Linux NVMe Target";
  d.serial = "abc123";
  d.firmware = "6.12.0";
  return d;
}

std::map<std::string, std::string> Props(const PublishedDevice& d) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : UdevProperties(d)) m[k] = v;
  return m;
}

TEST(PublishedDevice, UdevPropertiesPreferTheNguid) {
  auto p = Props(Sample());
  EXPECT_EQ(p["NVMF_UBLK_EUI"], "00112233445566778899aabbccddeeff");
  EXPECT_EQ(p["NVMF_UBLK_UUID"], "12345678-9abc-def0-1234-56789abcdef0");
  EXPECT_EQ(p["NVMF_UBLK_NSID"], "2");
  EXPECT_EQ(p["NVMF_UBLK_SUBNQN"], "nqn.2026-01.io.test:sub");
  EXPECT_EQ(p["ID_MODEL"], "Linux_NVMe_Target");
  EXPECT_EQ(p["ID_MODEL_ENC"], "Linux\\x20NVMe\\x20Target");
  EXPECT_EQ(p["ID_SERIAL_SHORT"], "abc123");
  EXPECT_EQ(p["ID_SERIAL"], "Linux_NVMe_Target_abc123_2");
  EXPECT_EQ(p["ID_REVISION"], "6.12.0");
  EXPECT_EQ(p["ID_WWN"], "eui.00112233445566778899aabbccddeeff");
}

TEST(PublishedDevice, Eui64WithoutNguidAndUuidOnly) {
  PublishedDevice d = Sample();
  d.nguid.clear();
  auto p = Props(d);
  EXPECT_EQ(p["NVMF_UBLK_EUI"], "0102030405060708");
  EXPECT_EQ(p["ID_WWN"], "eui.0102030405060708");
  d.eui64.clear();
  p = Props(d);
  EXPECT_EQ(p.count("NVMF_UBLK_EUI"), 0u);
  EXPECT_EQ(p["ID_WWN"], "uuid.12345678-9abc-def0-1234-56789abcdef0");
  d.uuid.clear();
  p = Props(d);
  EXPECT_EQ(p.count("NVMF_UBLK_UUID"), 0u);
  EXPECT_EQ(p.count("ID_WWN"), 0u);  // no identity: no stable link, no WWN
}

// What a target reports cannot inject udev syntax, and identifiers of the wrong shape (a file
// edited by hand, a bug) never become /dev paths.
TEST(PublishedDevice, HostileStringsAreNeutralised) {
  PublishedDevice d = Sample();
  d.model = "evil\"\nRUN+=\"/bin/sh";
  d.serial = "a$b\\c";
  for (const auto& [k, v] : UdevProperties(d)) {
    // ID_MODEL_ENC carries udev's \xNN escapes, and only those.
    std::string plain;
    for (size_t i = 0; i < v.size(); ++i) {
      if (k == "ID_MODEL_ENC" && v.compare(i, 2, "\\x") == 0) {
        i += 3;
        continue;
      }
      plain += v[i];
    }
    EXPECT_EQ(plain.find_first_of("\"\n\\$'` "), std::string::npos) << k << "=" << v;
  }
  EXPECT_EQ(Props(d)["ID_MODEL_ENC"], "evil\\x22\\x0aRUN+=\\x22/bin/sh");
  d.nguid = "../../etc/passwd";
  d.uuid = "12345678-9abc-def0-1234-56789abcdefX";
  ASSERT_OK_AND_ASSIGN(PublishedDevice back, PublishedDeviceFromJson(ToJsonText(d)));
  EXPECT_TRUE(back.nguid.empty());
  EXPECT_TRUE(back.uuid.empty());
  EXPECT_EQ(back.eui64, d.eui64);
}

TEST(PublishedDevice, WriteReadRemove) {
  const std::string dir = "/tmp/nvmf-ublk-pub-test-" + std::to_string(getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  const PublishedDevice d = Sample();
  ASSERT_THAT(WritePublishedDevice(dir, d), IsOk());
  const std::string path = PublishedDevicePath(dir, 3);
  EXPECT_EQ(path, dir + "/devices/ublkb3.json");
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_OK_AND_ASSIGN(PublishedDevice back, PublishedDeviceFromJson(text));
  EXPECT_EQ(back.dev_id, 3);
  EXPECT_EQ(back.nguid, d.nguid);
  EXPECT_EQ(back.model, d.model);
  RemovePublishedDevice(dir, 3);
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  rmdir((dir + "/devices").c_str());
  rmdir(dir.c_str());
}

TEST(PublishedDevice, BadFilesAreErrors) {
  EXPECT_THAT(PublishedDeviceFromJson("{"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(PublishedDeviceFromJson(R"({"version":2})"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(PublishedDeviceFromJson(R"({"version":1,"nsid":"x"})"),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(PublishedDevice, DevIdFromName) {
  EXPECT_EQ(UblkDevIdFromName("ublkb0"), 0);
  EXPECT_EQ(UblkDevIdFromName("/dev/ublkb12"), 12);
  EXPECT_EQ(UblkDevIdFromName("ublkb3p1"), 3);
  EXPECT_EQ(UblkDevIdFromName("ublkc3"), -1);
  EXPECT_EQ(UblkDevIdFromName("ublkb"), -1);
  EXPECT_EQ(UblkDevIdFromName("ublkb3x"), -1);
  EXPECT_EQ(UblkDevIdFromName("ublkb3p"), -1);
  EXPECT_EQ(UblkDevIdFromName("sda"), -1);
  EXPECT_EQ(UblkDevIdFromName("ublkb99999999999"), -1);
}

}  // namespace
}  // namespace nvmf_ublk::control
