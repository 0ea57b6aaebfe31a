#!/usr/bin/env bash
# t_daemon_restart: restarts that keep devices (plain guest, no systemd). Verified fio runs on a
# mounted ext4 on /dev/ublkbN while nvmf-ublkd is stopped with SIGTERM and started again, three
# times: SIGTERM exits 0 within 10 s, the device keeps its number, the filesystem stays mounted,
# the new daemon recovers the device, and fio ends with zero errors. Prints the restart gap (the
# longest I/O latency fio saw), SIGTERM -> exit and start -> device live.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
require_cmd fio mkfs.ext4 mountpoint
D=$NVMF_UBLK_BUILD_DIR/src/daemon/nvmf-ublkd
C=$NVMF_UBLK_BUILD_DIR/src/cli/nvmf-ublk
require_bin "$D" "$C"

NQN=nqn.2026-01.io.nvmf-ublk:restart
STATE=/run/nvmf-ublk-restart
SOCK=$STATE/control.sock
OUT=$NVMF_UBLK_GUEST_OUT
nvmet_brd_load 1 192
nvmet_target_up "$NQN" 4420 /dev/ram0
on_exit nvmet_teardown

ms_now() { echo $(($(date +%s%N) / 1000000)); }
start_daemon() {
  "$D" --state-dir "$STATE" --reactors 2 --log-level info >>"$OUT/nvmf-ublkd.log" 2>&1 &
  DPID=$!
  wait_for 30 "control socket" bash -c "$C --socket $SOCK list >/dev/null 2>&1"
}
start_daemon
on_exit sh -c "pkill -KILL -x nvmf-ublkd; true"

dev=$("$C" --socket "$SOCK" connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" --ctrl-loss-tmo 60 --reconnect-delay 1)
log "device $dev"
wait_for 10 "$dev" test -b "$dev"
mkfs.ext4 -q -F "$dev"
M=/mnt/restart
mkdir -p $M
mount "$dev" $M
on_exit sh -c "umount -l $M 2>/dev/null; true"

log "fio on ext4 (randwrite 4k-128k, iodepth 16, crc32c verify, latency log) while restarting"
fio --name=restart --directory=$M --size=64m --rw=randwrite --bsrange=4k-128k --iodepth=16 \
  --ioengine=io_uring --direct=1 --time_based --runtime=45 --verify=crc32c --verify_backlog=64 \
  --verify_fatal=1 --write_lat_log="$OUT/restart" --log_avg_msec=0 \
  --output-format=terse --terse-version=3 >"$OUT/fio-restart.terse" 2>&1 &
FIO=$!
on_exit sh -c "kill -INT $FIO 2>/dev/null; true"
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
  start_daemon
  "$C" --socket "$SOCK" list | tee "$OUT/list-$round.txt" >/dev/null
  wait_for 60 "$dev live again" bash -c "$C --socket $SOCK list | grep -E '^$dev ' | grep -q live"
  t2=$(ms_now)
  log "round $round: SIGTERM -> exit $((t1 - t0)) ms; start -> $dev live $((t2 - t1)) ms"
  echo "$round $((t1 - t0)) $((t2 - t1))" >>"$OUT/restart-times.txt"
done
rc=0
wait $FIO || rc=$?
terse=$(grep -a '^3;' "$OUT/fio-restart.terse" | tail -n1)
[[ -n $terse ]] || fail "fio (rc $rc) left no report: $(tail -n 5 "$OUT/fio-restart.terse")"
expect_eq "$(cut -d';' -f5 <<<"$terse")" 0 "fio error (errno) across 3 restarts"
((rc == 0)) || fail "fio exited $rc"
mountpoint -q $M || fail "filesystem unmounted"
# fio's latency log: msec, latency (nsec), direction, block size, offset.
gap_ms=$(cat "$OUT"/restart_lat.*.log | awk -F', *' '$2 > m {m = $2} END {printf "%d", m / 1000000}')
log "fio wrote $(cut -d';' -f47 <<<"$terse") KiB with zero errors across 3 restarts; longest I/O (restart gap) ${gap_ms} ms"
echo "gap_ms $gap_ms" >>"$OUT/restart-times.txt"
rm -f "$OUT"/restart_*.log
grep -E "handed over|recovered \(" "$OUT/nvmf-ublkd.log" | sed 's/^[^]]*] //' | tail -6
umount $M
"$C" --socket "$SOCK" disconnect -n "$NQN"
wait_for 20 "$dev to be removed" bash -c "[[ ! -b $dev ]]"
[[ ! -e $STATE/devices/ublkb${dev#/dev/ublkb}.json ]] || fail "published device file left behind"
log "ok"
