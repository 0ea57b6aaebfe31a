// What the daemon publishes about each of its block devices for udev (DESIGN.md §6): one JSON file
// per device, <state-dir>/devices/ublkb<N>.json, written before the disk appears (START_DEV) and
// removed after the device is deleted. `nvmf-ublk udev-info ublkbN` (run by
// udev/60-nvmf-ublk.rules) turns it into udev properties, from which the rules make the stable
// links /dev/disk/by-id/nvmf-ublk-eui.<NGUID or EUI-64> and nvmf-ublk-uuid.<UUID>: they name the
// remote namespace, so they never move to another one, and they survive daemon restarts (the file
// and the disk stay) and reconnects (the identity is checked before a device is recovered).
#ifndef NVMF_UBLK_CONTROL_PUBLISHED_DEVICE_H_
#define NVMF_UBLK_CONTROL_PUBLISHED_DEVICE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace nvmf_ublk::control {

struct PublishedDevice {
  int dev_id = -1;
  std::string subnqn;
  uint32_t nsid = 0;
  std::string nguid;  // 32 lower-case hex digits, empty when the namespace reports none
  std::string eui64;  // 16 lower-case hex digits, or empty
  std::string uuid;   // 8-4-4-4-12 lower-case hex, or empty
  std::string model;  // Identify Controller MN, SN, FR (trimmed)
  std::string serial;
  std::string firmware;
};

std::string ToJsonText(const PublishedDevice& d);
absl::StatusOr<PublishedDevice> PublishedDeviceFromJson(const std::string& text);

// <state_dir>/devices/ublkb<dev_id>.json
std::string PublishedDevicePath(const std::string& state_dir, int dev_id);
// Writes atomically (temporary file + rename), creating the directory; mode 0644 in a 0755
// directory below the state directory (udev reads it as root anyway).
absl::Status WritePublishedDevice(const std::string& state_dir, const PublishedDevice& d);
void RemovePublishedDevice(const std::string& state_dir, int dev_id);

// The udev properties of a device, in order: NVMF_UBLK_SUBNQN, NVMF_UBLK_NSID, NVMF_UBLK_EUI
// (the NGUID, else the EUI-64), NVMF_UBLK_UUID, ID_MODEL (blanks as '_'), ID_MODEL_ENC (udev's
// \x20 encoding), ID_SERIAL_SHORT (SN), ID_SERIAL (<model>_<SN>_<NSID>), ID_REVISION (FR) and
// ID_WWN (eui.<hex> or uuid.<uuid>, like the kernel's wwid). Values are restricted to printable
// ASCII without quotes or backslashes (others become '_'), so a target cannot inject properties.
std::vector<std::pair<std::string, std::string>> UdevProperties(const PublishedDevice& d);

// "ublkb3", "/dev/ublkb3" or a partition "ublkb3p1" -> 3; -1 for anything else.
int UblkDevIdFromName(const std::string& name);

}  // namespace nvmf_ublk::control

#endif  // NVMF_UBLK_CONTROL_PUBLISHED_DEVICE_H_
