#!/usr/bin/env bash
# t_kernel_initiator: proves the guest harness end to end with peers nobody here wrote: the
# kernel's nvmet-tcp target (brd-backed namespace) and the kernel's own NVMe/TCP initiator.
# discover -> connect -> find the namespace by NSID -> fio write + crc32c verify -> disconnect.
# Also checks that ublk_drv is there (/dev/ublk-control), which every product test needs.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
require_cmd nvme fio jq

NQN=nqn.2026-01.io.nvmf-ublk:guest-kernel-initiator

log "ublk_drv"
[[ -c /dev/ublk-control ]] || fail "/dev/ublk-control missing (ublk_drv not loaded)"

log "target: $NQN, nsid 1 = /dev/ram0 (64 MiB), tcp port 4420"
nvmet_brd_load 1 64
nvmet_target_up "$NQN" 4420 /dev/ram0
on_exit nvmet_teardown
expect_eq "$(cat "$NVMET_CFS/subsystems/$NQN/namespaces/1/device_path")" /dev/ram0 "configfs device_path"

log "discover"
entries=$(nvme_discovery_log 127.0.0.1 4420)
echo "$entries"
grep -qx "nvme $NQN 127.0.0.1 4420" <<<"$entries" || fail "discovery log lacks $NQN at 127.0.0.1:4420"

log "connect"
ctrl=$(nvme_connect "$NQN" 4420)
on_exit nvme_disconnect_all
dev=$(nvme_wait_ns 1 "$NQN")
log "nsid 1 -> $dev via $ctrl"
expect_eq "$(blockdev --getsize64 "$dev")" $((64 << 20)) "size of $dev"
expect_eq "$(blockdev --getss "$dev")" 512 "logical block size of $dev"

log "fio 4k randwrite + crc32c verify, 32 MiB"
fio_verify "$dev" --size=32m

log "disconnect"
out=$(nvme disconnect -n "$NQN")
echo "$out"
grep -q 'disconnected 1 controller' <<<"$out" || fail "nvme disconnect: $out"
wait_for 10 "controller $ctrl to go away" bash -c "[[ ! -e /sys/class/nvme/$ctrl ]]"
! nvme_ns_dev 1 "$NQN" >/dev/null || fail "namespace still present after disconnect"
log "ok"
