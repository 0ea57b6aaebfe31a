# Debian 12 packages the project needs, and a helper that installs only the missing ones.
# Sourced by tools/check and tools/demo.

BUILD_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libabsl-dev liburing-dev libnvme-dev libjson-c-dev libisal-dev libcli11-dev nlohmann-json3-dev
  libsystemd-dev libssl-dev
  libgtest-dev libgmock-dev
)
# clang + its runtime for the libFuzzer and sanitizer builds.
TEST_PACKAGES=(clang libclang-rt-14-dev)
# The guest test runner (tests/guest): QEMU with virtiofsd, a static busybox for the initramfs,
# kmod/cpio/xz to prepare the kernel, and the tools the guest runs from the host's root.
# keyutils and libnl-genl-3 let the cached tlshd (ktls-utils from trixie) run there.
GUEST_PACKAGES=(
  qemu-system-x86 busybox-static kmod cpio xz-utils util-linux iproute2
  nvme-cli fio e2fsprogs python3 ca-certificates jq systemd udev keyutils libnl-genl-3-200
)

# ensure_packages PKG...: apt-get installs the packages that are not installed yet.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
      missing+=("$p")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "all ${#@} packages present"
    return 0
  fi
  echo "installing: ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
}
