#!/usr/bin/env bash
# t_daemon_restart: restarts that keep devices (plain guest, no systemd). Verified fio runs on a
# mounted ext4 on /dev/ublkbN while nvmf-ublkd is stopped with SIGTERM and started again, three
# times: SIGTERM exits 0 within 10 s, the device keeps its number, the filesystem stays mounted,
# the new daemon recovers the device, and fio ends with zero errors; where the kernel has
# UBLK_F_QUIESCE each hand-over quiesced the device. Prints the restart gap (the longest I/O
# latency fio saw), SIGTERM -> exit and start -> device live.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
source "$NVMF_UBLK_GUEST_LIB/daemon.sh"
require_cmd fio mkfs.ext4 mountpoint
require_bin "$D" "$C"

NQN=nqn.2026-01.io.nvmf-ublk:restart
STATE=/run/nvmf-ublk-restart
SOCK=$STATE/control.sock
OUT=$NVMF_UBLK_GUEST_OUT
nvmet_brd_load 1 192
nvmet_target_up "$NQN" 4420 /dev/ram0
on_exit nvmet_teardown

daemon_start
on_exit sh -c "pkill -KILL -x nvmf-ublkd; true"
M=/mnt/restart
daemon_ext4 "$NQN" $M
dev=$DEV

log "fio on ext4 (randwrite 4k-128k, iodepth 16, crc32c verify, latency log) while restarting"
fio --name=restart --directory=$M --size=64m --rw=randwrite --bsrange=4k-128k --iodepth=16 \
  --ioengine=io_uring --direct=1 --time_based --runtime=45 --verify=crc32c --verify_backlog=64 \
  --verify_fatal=1 --write_lat_log="$OUT/restart" --log_avg_msec=0 --log_unix_epoch=1 \
  --output-format=terse --terse-version=3 >"$OUT/fio-restart.terse" 2>&1 &
FIO=$!
on_exit sh -c "kill -INT $FIO 2>/dev/null; true"
WINDOWS=()
for round in 1 2 3; do
  sleep 6
  kill -0 $FIO || fail "fio ended early: $(tail -3 "$OUT/fio-restart.terse")"
  t0=$(ms_now)
  kill -TERM "$DPID"
  rc=0
  wait "$DPID" || rc=$?
  t1=$(ms_now)
  ((rc == 0)) || fail "round $round: SIGTERM: nvmf-ublkd exited $rc"
  (((t1 - t0) < 10000)) || fail "round $round: SIGTERM took $((t1 - t0)) ms"
  [[ -b $dev ]] || fail "round $round: $dev is gone after SIGTERM"
  mountpoint -q $M || fail "round $round: $M unmounted after SIGTERM"
  grep -q "\"dev_id\": ${dev#/dev/ublkb}" "$STATE/state.json" || fail "round $round: state file lost $dev"
  daemon_start
  "$C" --socket "$SOCK" list | tee "$OUT/list-$round.txt" >/dev/null
  wait_for 60 "$dev live again" bash -c "$C --socket $SOCK list | grep -E '^$dev ' | grep -q live"
  t2=$(ms_now)
  WINDOWS+=("$t0 $((t2 + 3000))")
  log "round $round: SIGTERM -> exit $((t1 - t0)) ms; start -> $dev live $((t2 - t1)) ms"
done
rc=0
wait $FIO || rc=$?
kib=$(fio_terse_ok "$OUT/fio-restart.terse" $rc "across 3 restarts")
mountpoint -q $M || fail "filesystem unmounted"
gaps=()
for w in "${WINDOWS[@]}"; do
  # shellcheck disable=SC2086  # "FROM TO"
  gaps+=("$(fio_max_lat_ms "$OUT/restart_lat.*.log" $w)")
done
log "fio wrote $kib KiB with zero errors across 3 restarts; longest I/O per restart: ${gaps[*]} ms (whole run: $(fio_max_lat_ms "$OUT/restart_lat.*.log") ms)"
rm -f "$OUT"/restart_*.log
grep -E "handed over|recovered \(" "$OUT/nvmf-ublkd.log" | sed 's/^[^]]*] //' | tail -6
# Where the kernel has UBLK_F_QUIESCE (6.15+; the device was created with it), every hand-over
# quiesced the device; NVMF_UBLK_EXPECT_QUIESCE=1 (the test on a newer kernel) insists on it.
if grep -q "flags .*QUIESCE" "$OUT/nvmf-ublkd.log"; then
  n=$(grep -c "handed over 1 device(s) .* 1 quiesced" "$OUT/nvmf-ublkd.log" || true)
  expect_eq "$n" 3 "hand-overs that quiesced the device (UBLK_F_QUIESCE)"
  log "kernel has UBLK_F_QUIESCE: all 3 hand-overs quiesced the device"
elif [[ ${NVMF_UBLK_EXPECT_QUIESCE:-0} == 1 ]]; then
  fail "kernel $(uname -r) did not grant UBLK_F_QUIESCE"
fi
rc=0
"$C" --socket "$SOCK" disconnect -n "$NQN" 2>"$OUT/busy.err" || rc=$?
((rc == 1)) && grep -q "is mounted on $M" "$OUT/busy.err" ||
  fail "disconnect of a mounted device: exit $rc, $(cat "$OUT/busy.err")"
[[ -b $dev ]] || fail "a mounted device was removed"
# A filesystem that cannot be unmounted (busy) keeps its device, and says so.
(cd $M && exec sleep 120) &
BUSY=$!
rc=0
"$C" --socket "$SOCK" disconnect-all --unmount >"$OUT/busy.out" 2>"$OUT/busy.err" || rc=$?
((rc == 1)) && grep -q "keeping $dev: unmount $M" "$OUT/busy.err" ||
  fail "disconnect-all --unmount of a busy filesystem: exit $rc, $(cat "$OUT/busy.err")"
[[ -b $dev ]] && mountpoint -q $M || fail "a busy filesystem lost its device"
kill $BUSY
wait $BUSY 2>/dev/null || true
"$C" --socket "$SOCK" disconnect-all --unmount | tee "$OUT/disconnect-all.txt"
grep -q "^unmounted $M ($dev)" "$OUT/disconnect-all.txt" || fail "disconnect-all --unmount did not unmount $M"
! mountpoint -q $M || fail "$M still mounted"
wait_for 20 "$dev to be removed" bash -c "[[ ! -b $dev ]]"
[[ ! -e $STATE/devices/ublkb${dev#/dev/ublkb}.json ]] || fail "published device file left behind"
log "ok"
