#!/usr/bin/env bash
# t_systemd_autoconnect: nvmf-ublk-autoconnect.service at boot and at shutdown, under systemd.
# The boot setup (boot_autoconnect.sh, before systemd started) left an nvmet subsystem on port
# 4420, /etc/nvme/discovery.conf naming that port, a `_netdev` fstab mount of the namespace by its
# by-id link, and nvmf-ublkd + nvmf-ublk-autoconnect enabled. At boot: the unit is active, its
# persistent discovery controller is live and owned by "autoconnect", the device is there and
# mounted, ordered after the unit, with the data written before the boot. At `systemctl
# poweroff`: the mount goes first, then the unit's ExecStop disconnects the device (with no I/O
# error), while the daemon still runs.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
require_systemd
require_cmd jq systemctl findmnt md5sum
OUT=$NVMF_UBLK_GUEST_OUT
C=/usr/local/sbin/nvmf-ublk
UUID=8d3e6f70-4152-4d8e-9fa0-a1b2c3d4e5f6
U=nvmf-ublk-autoconnect.service

[[ $(systemctl is-active $U) == active ]] || fail "$U: $(systemctl status $U 2>&1 | tail -20)"
journalctl -b -u $U --no-pager >"$OUT/autoconnect.journal" 2>&1 || true
dev=$(readlink -f "/dev/disk/by-id/nvmf-ublk-uuid.$UUID")
[[ $dev == /dev/ublkb* ]] || fail "no device for the namespace: by-id -> '$dev'"
"$C" list -o json >"$OUT/list.json"
expect_eq "$(jq -r '.discovery[0].owner' "$OUT/list.json")" autoconnect "owner of the discovery controller"
expect_eq "$(jq -r '.discovery[0].state' "$OUT/list.json")" live "state of the discovery controller"
expect_eq "$(jq -r '.devices[0].path' "$OUT/list.json")" "$dev" "device"
expect_eq "$(findmnt -n -o SOURCE /mnt/auto)" "$dev" "what is mounted on /mnt/auto"
expect_eq "$(md5sum </mnt/auto/data)" "$(cat /var/lib/nvmf-ublk-guest/data.md5)" "data written before the boot"

# The mount started only once the unit was done (Before=remote-fs-pre.target).
unit_up=$(systemctl show -p ActiveEnterTimestampMonotonic --value $U)
mount_start=$(systemctl show -p InactiveExitTimestampMonotonic --value mnt-auto.mount)
((unit_up > 0 && mount_start >= unit_up)) ||
  fail "mnt-auto.mount started at ${mount_start} us, before $U was up at ${unit_up} us"
[[ $(systemctl show -p After --value $U) == *nvmf-ublkd.service* ]] || fail "$U is not after nvmf-ublkd"
log "boot: $U active, $dev mounted on /mnt/auto (mount at ${mount_start} us, unit up at ${unit_up} us)"

dd if=/dev/urandom of=/mnt/auto/more bs=1M count=8 status=none   # dirty data the unmount writes
guest_poweroff \
  --expect "Unmounted mnt-auto.mount|Unmounted /mnt/auto" \
  --expect "EXT4-fs \\(${dev#/dev/}\\): unmounting filesystem" \
  --expect "disconnected 1 device\\(s\\)" \
  --expect "ublk: $dev stopped and deleted" \
  --reject "I/O error|Buffer I/O|EXT4-fs error|blk_update_request" \
  --order "Unmounted mnt-auto.mount|Unmounted /mnt/auto" "ublk: $dev stopped and deleted" \
  --order "ublk: $dev stopped and deleted" "Stopped nvmf-ublkd.service|Stopping nvmf-ublkd.service"
