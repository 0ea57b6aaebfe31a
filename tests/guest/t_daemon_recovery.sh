#!/usr/bin/env bash
# t_daemon_recovery: kill -9 of nvmf-ublkd in the middle of verified fio on a mounted ext4; a new
# daemon finds the device in its state file, reconnects and recovers it (UBLK_F_USER_RECOVERY +
# REISSUE): the filesystem stays mounted, fio finishes with zero errors.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
source "$NVMF_UBLK_GUEST_LIB/daemon.sh"
require_cmd fio mkfs.ext4 mountpoint
require_bin "$D" "$C"

NQN=nqn.2026-01.io.nvmf-ublk:recovery
STATE=/run/nvmf-ublk-test
SOCK=$STATE/control.sock
nvmet_brd_load 1 192
nvmet_target_up "$NQN" 4420 /dev/ram0
on_exit nvmet_teardown

daemon_start
on_exit sh -c "pkill -KILL -x nvmf-ublkd; true"
M=/mnt/recovery
daemon_ext4 "$NQN" $M
dev=$DEV

log "fio on ext4 (randwrite 4k-128k, iodepth 32, crc32c verify) for 30 s"
fio --name=recovery --directory=$M --size=96m --rw=randwrite --bsrange=4k-128k --iodepth=32 \
  --ioengine=io_uring --direct=1 --time_based --runtime=30 --verify=crc32c --verify_backlog=64 \
  --verify_fatal=1 --output-format=terse --terse-version=3 >"$NVMF_UBLK_GUEST_OUT/fio-recovery.terse" 2>&1 &
FIO=$!
sleep 8
kill -0 $FIO || fail "fio ended early: $(tail -3 "$NVMF_UBLK_GUEST_OUT/fio-recovery.terse")"
log "kill -9 nvmf-ublkd ($DPID) under load"
kill -9 "$DPID"
wait "$DPID" 2>/dev/null || true
sleep 2
mountpoint -q $M || fail "filesystem unmounted after the daemon died"
log "restart"
daemon_start
wait_for 60 "device recovered" bash -c "$C --socket $SOCK list | grep -q live"
"$C" --socket "$SOCK" list
rc=0
wait $FIO || rc=$?
kib=$(fio_terse_ok "$NVMF_UBLK_GUEST_OUT/fio-recovery.terse" $rc "after recovery")
mountpoint -q $M || fail "filesystem unmounted"
log "fio wrote $kib KiB with zero errors across the restart"
umount $M
"$C" --socket "$SOCK" disconnect -n "$NQN"
wait_for 20 "$dev to be removed" bash -c "[[ ! -b $dev ]]"
log "ok"
