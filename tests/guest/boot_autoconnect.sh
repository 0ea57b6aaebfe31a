#!/usr/bin/env bash
# boot_autoconnect: the boot setup of guest_systemd_autoconnect (run-guest --boot-setup), run
# before systemd starts: an nvmet subsystem with an ext4 namespace behind port 4420 (whose
# discovery service lists it), /etc/nvme/discovery.conf naming that port, a `_netdev` fstab line
# for the namespace's by-id link, and the product installed with nvmf-ublkd.service and
# nvmf-ublk-autoconnect.service enabled (not nvmf-ublk-shutdown.service: removing the device at
# shutdown is then the autoconnect unit's own ExecStop). t_systemd_autoconnect checks the boot.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
require_cmd mkfs.ext4 cmake systemctl
B=$NVMF_UBLK_BUILD_DIR
OUT=$NVMF_UBLK_GUEST_OUT
NQN=nqn.2026-01.io.nvmf-ublk:autoconnect
UUID=8d3e6f70-4152-4d8e-9fa0-a1b2c3d4e5f6

ip link set lo up   # systemd would do it later; nvmet binds now
nvmet_brd_load 1 64
mkfs.ext4 -q -F /dev/ram0
mkdir -p /mnt/boot-src
mount /dev/ram0 /mnt/boot-src
head -c 4M /dev/urandom >/mnt/boot-src/data
mkdir -p /var/lib/nvmf-ublk-guest && md5sum </mnt/boot-src/data >/var/lib/nvmf-ublk-guest/data.md5
umount /mnt/boot-src
nvmet_subsys_create "$NQN"
nvmet_ns_add "$NQN" 1 /dev/ram0 device_uuid=$UUID
nvmet_port_create 4420 4420
nvmet_port_link 4420 "$NQN"

mkdir -p /etc/nvme /mnt/auto
printf '# nvmf-ublk guest: the target of this boot\n-t tcp -a 127.0.0.1 -s 4420\n' \
  >/etc/nvme/discovery.conf
echo "/dev/disk/by-id/nvmf-ublk-uuid.$UUID /mnt/auto ext4 _netdev 0 0" >>/etc/fstab

cmake --install "$B" >"$OUT/install.log" 2>&1 || fail "cmake --install: $(tail -3 "$OUT/install.log")"
systemctl enable nvmf-ublkd.service nvmf-ublk-autoconnect.service
echo "boot setup done: $NQN on 4420, discovery.conf, fstab /mnt/auto, units enabled"
