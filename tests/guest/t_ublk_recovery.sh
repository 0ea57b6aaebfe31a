#!/usr/bin/env bash
# t_ublk_recovery: a ublk server killed with SIGKILL while fio writes and verifies: the device
# (USER_RECOVERY | USER_RECOVERY_REISSUE) stays, its I/O waits; a new ublk_ramdisk process takes it
# over (UblkDevice::Recover: START_USER_RECOVERY, FETCH every tag, END_USER_RECOVERY) under the same
# /dev/ublkbN, the kernel re-issues what the dead server had in flight, and fio finishes with zero
# verify errors. The data lives in a /dev/shm file, so it survives the server.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
bin=$NVMF_UBLK_BUILD_DIR/src/ublk/ublk_ramdisk
require_bin "$bin"
require_cmd fio blockdev
[[ -c /dev/ublk-control ]] || skip "no /dev/ublk-control (ublk_drv not loaded)"
out=$NVMF_UBLK_GUEST_OUT
backing=/dev/shm/t_ublk_recovery.img
rm -f "$backing"
on_exit rm -f "$backing"

# If the test fails with the device left without a server, delete it (it would hold I/O forever).
cleanup_device() {
  [[ -n ${DEV:-} && -e /dev/ublkc${DEV#/dev/ublkb} ]] || return 0
  "$bin" --delete "${DEV#/dev/ublkb}" || true
}
on_exit cleanup_device

# 2 ms of backend latency: at the kill, requests sit in the dead server (taken, not committed).
ublk_ramdisk_start first 60 --size 64M --queues 2 --depth 64 --backing "$backing" --latency-us 2000
dev=$DEV first=$PID id=${DEV#/dev/ublkb}
"$bin" --info "$id" | tee "$out/info-live"
grep -q '^state LIVE .*USER_RECOVERY_REISSUE' "$out/info-live" || fail "not live with recovery"
fio_bg_start load "$dev" --size=32m --iodepth=8
sleep 3
kill -0 "$first"
kill -KILL "$first"
wait "$first" 2>/dev/null || true
log "first server killed with I/O in flight"
[[ -b $dev ]] || fail "$dev vanished with its server"
# The kernel quiesces the device once the dead server's io_uring is gone; I/O waits meanwhile.
quiesced() { "$bin" --info "$id" 2>/dev/null | grep -q '^state QUIESCED'; }
wait_for 30 "device $id quiesced" quiesced
"$bin" --info "$id"

ublk_ramdisk_start second 60 --recover "$id" --queues 2 --backing "$backing" --async
expect_eq "$DEV" "$dev" "device after recovery"
expect_eq "$(blockdev --getsize64 "$dev")" $((64 << 20)) "size after recovery"
second=$PID
sleep 4   # fio goes on against the new server
fio_bg_stop load
log "fio: no I/O or verify error across the crash"

kill -USR1 "$second"
wait_for 10 "counters" grep -q '^stats: ' "$out/second.log"
writes=$(grep '^stats: ' "$out/second.log" | tail -n1 | sed -n 's/.* writes=\([0-9]*\).*/\1/p')
((writes > 0)) || fail "the recovered server served no writes"

# And a fresh write + verify pass through the recovered server.
fio_verify "$dev" --size=8m --offset=40m
kill -TERM "$second"
rc=0
wait "$second" || rc=$?
((rc == 0)) || fail "second server exited $rc: $(tail -n 3 "$out/second.log")"
[[ ! -e $dev ]] || fail "$dev still exists after stop"
log "done"
