#!/usr/bin/env bash
# t_systemd_shutdown: at `systemctl poweroff`, filesystems on nvmf-ublk devices are unmounted
# before their devices are removed, while the daemon still runs, and nothing reports an I/O error:
#  - one mounted with _netdev (by its by-id link): systemd unmounts it before
#    nvmf-ublk-shutdown.service stops (Before=remote-fs-pre.target);
#  - one mounted plainly: systemd's own unmount (umount.target) and `disconnect-all --unmount`
#    (that unit's ExecStop) race; whichever wins, the filesystem is unmounted before its device is
#    removed. (t_daemon_restart proves `disconnect-all --unmount` by itself.)
# The test ends by powering the guest off; the runner checks the shutdown journal (guest_poweroff).
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
[[ $(readlink /proc/1/exe) == */systemd ]] || skip "needs systemd as PID 1 (run-guest --systemd)"
require_cmd mkfs.ext4 cmake udevadm systemctl
B=$NVMF_UBLK_BUILD_DIR
OUT=$NVMF_UBLK_GUEST_OUT
require_bin "$B/src/daemon/nvmf-ublkd" "$B/src/cli/nvmf-ublk"
cmake --install "$B" >"$OUT/install.log" 2>&1 || fail "cmake --install: $(tail -3 "$OUT/install.log")"
C=/usr/local/sbin/nvmf-ublk
systemctl daemon-reload
udevadm control --reload

NQN=nqn.2026-01.io.nvmf-ublk:shutdown
UUID1=6b1c4d5e-2f30-4b6c-9d7e-8f90a1b2c3d4
UUID2=7c2d5e6f-3041-4c7d-8e9f-90a1b2c3d4e5
nvmet_brd_load 2 64
nvmet_subsys_create "$NQN"
nvmet_ns_add "$NQN" 1 /dev/ram0 device_uuid=$UUID1
nvmet_ns_add "$NQN" 2 /dev/ram1 device_uuid=$UUID2
nvmet_port_create 4420 4420
nvmet_port_link 4420 "$NQN"

systemctl enable --now nvmf-ublkd.service nvmf-ublk-shutdown.service 2>"$OUT/enable.log"
"$C" connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" >"$OUT/devices"
udevadm settle
L1=/dev/disk/by-id/nvmf-ublk-uuid.$UUID1
L2=/dev/disk/by-id/nvmf-ublk-uuid.$UUID2
d1=$(readlink -f "$L1") d2=$(readlink -f "$L2")
[[ $d1 == /dev/ublkb* && $d2 == /dev/ublkb* && $d1 != "$d2" ]] || fail "links: $L1 -> $d1, $L2 -> $d2"
for l in "$L1" "$L2"; do mkfs.ext4 -q -F "$l"; done
mkdir -p /mnt/netdev /mnt/plain
mount -o _netdev "$L1" /mnt/netdev
mount "$L2" /mnt/plain
for m in /mnt/netdev /mnt/plain; do
  dd if=/dev/urandom of=$m/data bs=1M count=8 status=none   # dirty data the unmount must write
done
[[ $(systemctl show -p After mnt-netdev.mount) == *remote-fs-pre.target* ]] ||
  fail "systemd does not order the _netdev mount after remote-fs-pre.target: $(systemctl show -p After mnt-netdev.mount)"
log "$d1 on /mnt/netdev (_netdev), $d2 on /mnt/plain; powering off"
guest_poweroff \
  --expect "Unmounted mnt-netdev.mount|Unmounted /mnt/netdev" \
  --expect "EXT4-fs \\(${d1#/dev/}\\): unmounting filesystem" \
  --expect "EXT4-fs \\(${d2#/dev/}\\): unmounting filesystem" \
  --expect "disconnected 2 device\\(s\\)" \
  --expect "ublk: $d1 stopped and deleted" \
  --expect "ublk: $d2 stopped and deleted" \
  --reject "I/O error|Buffer I/O|EXT4-fs error|blk_update_request" \
  --reject "nvmf-ublk.*unmounted /mnt/netdev" \
  --order "Unmounted mnt-netdev.mount|Unmounted /mnt/netdev" "ublk: $d1 stopped and deleted" \
  --order "unmounted /mnt/plain|Unmounted mnt-plain.mount|Unmounted /mnt/plain" "ublk: $d2 stopped and deleted"
