#!/usr/bin/env bash
# t_daemon_multipath: native multipath against the kernel's nvmet-tcp. One subsystem on two ports
# (4420, 4421) gives one device with two paths. One fio randwrite with crc32c verify (160 s) runs
# through, in turn: (A) the ports unlinked and relinked 20 times over >= 90 s while ANA states
# change (non-optimized, inaccessible, change, optimized); (B) both ports gone 10 s and back;
# (C) kill -9 of the daemon, the new one recovering the device with both paths and the I/O policy
# set before; (D) one path
# disconnected (-a/-s), the device staying on the other: zero fio errors. Then the path is
# connected again (same device), and (E) both ports gone past fast_io_fail_tmo: reads fail with
# EIO, the device stays, and serves again when a port returns.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
source "$NVMF_UBLK_GUEST_LIB/daemon.sh"
require_cmd fio jq dd
require_bin "$D" "$C"

NQN=nqn.2026-01.io.nvmf-ublk:multipath
STATE=/run/nvmf-ublk-mp
SOCK=$STATE/control.sock
FAST_FAIL=20
nvmet_brd_load 1 192
nvmet_target_up "$NQN" "4420 4421" /dev/ram0
on_exit nvmet_teardown

daemon_start
on_exit sh -c "pkill -KILL -x nvmf-ublkd; true"

connect_path() {
  "$C" --socket "$SOCK" connect -t tcp -a 127.0.0.1 -s "$1" -n "$NQN" --ctrl-loss-tmo -1 \
    --reconnect-delay 1 --fast_io_fail_tmo $FAST_FAIL
}
dev=$(connect_path 4420)
dev2=$(connect_path 4421)
expect_eq "$dev2" "$dev" "device of the second portal"
wait_for 10 "$dev" test -b "$dev"
list_json() { "$C" --socket "$SOCK" list -o json; }
paths_live() {
  list_json | jq -e --arg d "$1" --argjson n "$2" \
    '[.devices[] | select(.path == $d) | .paths[] | select(.state == "live")] | length == $n' \
    >/dev/null
}
expect_eq "$(list_json | jq '.devices | length')" 1 "devices listed"
expect_eq "$(list_json | jq '.devices[0].paths | length')" 2 "paths of $dev"
paths_live "$dev" 2 || fail "both paths should be live: $(list_json)"
"$C" --socket "$SOCK" list

FIO_OUT=$NVMF_UBLK_GUEST_OUT/fio-multipath.terse
LOG=$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log
# One verified fio run carries every scenario that must cost no error, one after the other.
FIO_S=160
log "fio randwrite + crc32c verify for $FIO_S s on $dev"
fio --name=multipath --filename="$dev" --size=96m --rw=randwrite --bsrange=4k-64k --iodepth=16 \
  --ioengine=io_uring --direct=1 --time_based --runtime=$FIO_S --verify=crc32c \
  --verify_backlog=64 --verify_fatal=1 --output-format=terse --terse-version=3 >"$FIO_OUT" 2>&1 &
FIO=$!
fio_start=$(date +%s)
fio_alive() { kill -0 "$FIO" 2>/dev/null || fail "fio ended early ($1): $(tail -3 "$FIO_OUT")"; }

log "A: the ports flap 20 times over >= 90 s, ANA states change"
for i in $(seq 1 20); do
  port=$((i % 2 ? 4420 : 4421))
  nvmet_port_unlink "$port" "$NQN"
  sleep 1
  case $((i % 5)) in
    1) nvmet_ana_set 4420 1 non-optimized ;;
    2) nvmet_ana_set 4421 1 inaccessible ;;
    3) nvmet_ana_set 4421 1 change ;;
    4) nvmet_ana_set 4420 1 optimized; nvmet_ana_set 4421 1 optimized ;;
  esac
  nvmet_port_link "$port" "$NQN"
  wait_for 30 "both paths live again (flap $i)" paths_live "$dev" 2
  fio_alive "flap $i"
  sleep 1.5
done
nvmet_ana_set 4420 1 optimized
nvmet_ana_set 4421 1 optimized
while (($(date +%s) - fio_start < 90)); do sleep 1; done
log "20 flaps in $(($(date +%s) - fio_start)) s"
"$C" --socket "$SOCK" list
grep -q 'ANA optimized -> inaccessible' "$LOG" || fail "no ANA transition reached the daemon"

log "B: both ports gone for 10 s, then back"
nvmet_port_unlink 4420 "$NQN"
nvmet_port_unlink 4421 "$NQN"
sleep 10
nvmet_port_link 4420 "$NQN"
nvmet_port_link 4421 "$NQN"
wait_for 30 "both paths live" paths_live "$dev" 2
fio_alive "both ports down"

log "C: kill -9 nvmf-ublkd under fio: recovered with both paths and its I/O policy"
"$C" --socket "$SOCK" set-iopolicy -d "$dev" queue-depth
expect_eq "$(list_json | jq -r '.devices[0].iopolicy')" queue-depth "I/O policy"
kill -9 "$DPID"
wait "$DPID" 2>/dev/null || true
sleep 1
daemon_start
wait_for 60 "$dev recovered with both paths" paths_live "$dev" 2
expect_eq "$(list_json | jq '.devices | length')" 1 "devices after recovery"
expect_eq "$(list_json | jq -r '.devices[0].iopolicy')" queue-depth "I/O policy after recovery"
fio_alive "daemon killed"

log "D: disconnect of the path through 4420 under fio: the device stays on 4421"
"$C" --socket "$SOCK" disconnect -n "$NQN" -a 127.0.0.1 -s 4420 | tee "$NVMF_UBLK_GUEST_OUT/dis.out"
grep -q 'removed 0 device' "$NVMF_UBLK_GUEST_OUT/dis.out" || fail "$(cat "$NVMF_UBLK_GUEST_OUT/dis.out")"
test -b "$dev" || fail "$dev went with one of its paths"
expect_eq "$(list_json | jq '.devices[0].paths | length')" 1 "paths after disconnecting one"
expect_eq "$(list_json | jq -r '.devices[0].paths[0].trsvcid')" 4421 "remaining path"
fio_alive "one path disconnected"
log "A-D done $(($(date +%s) - fio_start)) s into the fio run"
rc=0
wait "$FIO" || rc=$?
kib=$(fio_terse_ok "$FIO_OUT" $rc "multipath")
log "fio wrote $kib KiB with zero errors through A-D"

log "the path through 4420 connected again: the same device"
expect_eq "$(connect_path 4420)" "$dev" "device of the re-added path"
paths_live "$dev" 2 || fail "both paths should be live: $(list_json)"
"$C" --socket "$SOCK" set-iopolicy -d "$dev" latency
expect_eq "$(list_json | jq -r '.devices[0].iopolicy')" latency "I/O policy"

log "E: both ports gone past fast_io_fail_tmo ($FAST_FAIL s): EIO, the device stays"
nvmet_port_unlink 4420 "$NQN"
nvmet_port_unlink 4421 "$NQN"
t0=$(date +%s)
if dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct 2>"$NVMF_UBLK_GUEST_OUT/dd-eio.err"; then
  fail "a read with every path gone past fast_io_fail_tmo succeeded"
fi
waited=$(($(date +%s) - t0))
grep -q 'Input/output error' "$NVMF_UBLK_GUEST_OUT/dd-eio.err" ||
  fail "dd: $(cat "$NVMF_UBLK_GUEST_OUT/dd-eio.err")"
((waited <= FAST_FAIL + 15)) || fail "the read waited $waited s (fast_io_fail_tmo $FAST_FAIL s)"
log "read failed with EIO after $waited s"
test -b "$dev" || fail "$dev went away"
nvmet_port_link 4421 "$NQN"
wait_for 30 "path 4421 live" paths_live "$dev" 1
dd if="$dev" of=/dev/null bs=4k count=16 iflag=direct status=none ||
  fail "$dev does not serve again after a port returned"
"$C" --socket "$SOCK" disconnect -n "$NQN"
wait_for 20 "$dev to be removed" bash -c "[[ ! -b $dev ]]"
log "ok"
