#!/usr/bin/env bash
# t_daemon_multipath: native multipath against the kernel's nvmet-tcp. One subsystem on two ports
# (4420, 4421) gives one device with two paths; fio randwrite with crc32c verify runs while the
# ports are unlinked and relinked 20 times and ANA states change (non-optimized, inaccessible,
# change, optimized): zero errors. Both ports gone 10 s and back: zero errors. Both gone past
# fast_io_fail_tmo: reads fail with EIO, the device stays and serves again when a port returns.
# kill -9 of the daemon under load: the new daemon recovers the device with both paths. Then one
# path is disconnected (-a/-s): the device stays on the other.
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
run_fio() {  # run_fio SECONDS: randwrite + verify on the raw device, in the background (FIO)
  fio --name=multipath --filename="$dev" --size=96m --rw=randwrite --bsrange=4k-64k --iodepth=16 \
    --ioengine=io_uring --direct=1 --time_based --runtime="$1" --verify=crc32c \
    --verify_backlog=64 --verify_fatal=1 --output-format=terse --terse-version=3 >"$FIO_OUT" 2>&1 &
  FIO=$!
}
fio_done() {  # fio_done WHAT
  local rc=0 kib
  wait "$FIO" || rc=$?
  kib=$(fio_terse_ok "$FIO_OUT" $rc "$1")
  log "fio wrote $kib KiB with zero errors ($1)"
}

log "fio for 130 s while the ports flap 20 times (over >= 90 s) and ANA states change"
run_fio 130
start=$(date +%s)
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
  kill -0 "$FIO" || break
  sleep 2
done
nvmet_ana_set 4420 1 optimized
nvmet_ana_set 4421 1 optimized
((i == 20)) || fail "fio ended after $i flaps ($(($(date +%s) - start)) s)"
flap_s=$(($(date +%s) - start))
log "20 flaps in $flap_s s"
((flap_s >= 90)) || fail "the flaps took $flap_s s, under the 90 s they should span"
"$C" --socket "$SOCK" list
fio_done "20 port flaps and ANA changes"
grep -q 'ANA optimized -> inaccessible' "$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log" ||
  fail "no ANA transition reached the daemon"

log "both ports gone for 10 s under fio, then back"
run_fio 40
sleep 5
nvmet_port_unlink 4420 "$NQN"
nvmet_port_unlink 4421 "$NQN"
sleep 10
nvmet_port_link 4420 "$NQN"
nvmet_port_link 4421 "$NQN"
wait_for 30 "both paths live" paths_live "$dev" 2
fio_done "both ports down 10 s"

log "both ports gone past fast_io_fail_tmo ($FAST_FAIL s): EIO, the device stays"
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
nvmet_port_link 4420 "$NQN"
wait_for 30 "both paths live" paths_live "$dev" 2

log "kill -9 nvmf-ublkd under fio: recovered with both paths"
run_fio 40
sleep 8
kill -9 "$DPID"
wait "$DPID" 2>/dev/null || true
sleep 1
daemon_start
wait_for 60 "$dev recovered with both paths" paths_live "$dev" 2
fio_done "daemon killed under multipath load"
expect_eq "$(list_json | jq '.devices | length')" 1 "devices after recovery"

log "disconnect of the path through 4420: the device stays on 4421"
run_fio 20
sleep 3
"$C" --socket "$SOCK" disconnect -n "$NQN" -a 127.0.0.1 -s 4420 | tee "$NVMF_UBLK_GUEST_OUT/dis.out"
grep -q 'removed 0 device' "$NVMF_UBLK_GUEST_OUT/dis.out" || fail "$(cat "$NVMF_UBLK_GUEST_OUT/dis.out")"
test -b "$dev" || fail "$dev went with one of its paths"
expect_eq "$(list_json | jq '.devices[0].paths | length')" 1 "paths after disconnecting one"
expect_eq "$(list_json | jq -r '.devices[0].paths[0].trsvcid')" 4421 "remaining path"
fio_done "one path disconnected under load"
"$C" --socket "$SOCK" set-iopolicy -d "$dev" queue-depth
expect_eq "$(list_json | jq -r '.devices[0].iopolicy')" queue-depth "I/O policy"
"$C" --socket "$SOCK" disconnect -n "$NQN"
wait_for 20 "$dev to be removed" bash -c "[[ ! -b $dev ]]"
log "ok"
