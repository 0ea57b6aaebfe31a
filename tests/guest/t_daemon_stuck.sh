#!/usr/bin/env bash
# t_daemon_stuck: a device whose I/O is stuck at the target is given up at disconnect, and nothing
# else suffers. The target (on the host, from tests/guest/with-malice-targets) never answers every
# 32nd I/O command, and the daemon's I/O timeout is an hour, so a read stays in the backend for good.
# `disconnect` waits --stop-timeout (3 s) for the device's I/O, then gives the device up (exit 1, a
# line saying so; the ublk device is not deleted): its ublk
# queues are kept in memory and its namespace head fails what they still hand it (EIO); the
# controller's shutdown fails the stuck read, which reaches the reader as EIO. The daemon stays up
# and serves a new connection.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
PORT=${NVMF_UBLK_STUCK_PORT:-}
[[ -n $PORT ]] || skip "no host target (run as guest_daemon_malice: tests/guest/with-malice-targets)"
D=$NVMF_UBLK_BUILD_DIR/src/daemon/nvmf-ublkd
C=$NVMF_UBLK_BUILD_DIR/src/cli/nvmf-ublk
require_bin "$D" "$C"
[[ -c /dev/ublk-control ]] || fail "no /dev/ublk-control"

STATE=/run/nvmf-ublk-stuck
SOCK=$STATE/control.sock
LOG=$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log
"$D" --state-dir "$STATE" --reactors 2 --io-timeout 3600 --stop-timeout 3 --log-level info \
  >"$LOG" 2>&1 &
DPID=$!
on_exit sh -c "kill $DPID 2>/dev/null; sleep 1; kill -9 $DPID 2>/dev/null; true"
wait_for 20 "control socket" test -S "$SOCK"

NQN=nqn.2026-01.io.nvmf-ublk:stuck
dev=$("$C" --socket "$SOCK" connect -t tcp -a 10.0.2.2 -s "$PORT" -n "$NQN" -i 1 -Q 32 \
  --reconnect-delay 1 --ctrl-loss-tmo 60) || fail "connect failed"
wait_for 20 "$dev" test -b "$dev"
log "device $dev; reading it 4 KiB at a time until a read hangs"
dd if="$dev" of=/dev/null bs=4k count=200 iflag=direct 2>"$NVMF_UBLK_GUEST_OUT/dd.err" &
DD=$!
sleep 3
kill -0 "$DD" 2>/dev/null || fail "the reader finished: no read got stuck ($(cat "$NVMF_UBLK_GUEST_OUT/dd.err"))"

log "disconnect with a read stuck at the target"
t0=$(date +%s)
drc=0
out=$("$C" --socket "$SOCK" disconnect -d "$dev" 2>&1) || drc=$?
echo "$out"
log "disconnect returned $drc after $(($(date +%s) - t0)) s"
((drc == 1)) || fail "disconnect of a given-up device returned $drc, want 1"
grep -q "$dev: its I/O did not stop within nvmf-ublkd's --stop-timeout; the device was given up" \
  <<<"$out" || fail "disconnect did not say the device was given up"
id=${dev#/dev/ublkb}
[[ -e /dev/ublkc$id ]] || fail "/dev/ublkc$id is gone, but the message says it is not deleted"
grep -a "queues still running after STOP_DEV" "$LOG" || fail "no log line about the stuck queues"
grep -a "kept in memory with its queues for good" "$LOG" || fail "the device was not given up"
wait_for 30 "the stuck read to end" sh -c "! kill -0 $DD 2>/dev/null"
rc=0
wait "$DD" || rc=$?
cat "$NVMF_UBLK_GUEST_OUT/dd.err"
((rc != 0)) || fail "the stuck read succeeded"
grep -q "Input/output error" "$NVMF_UBLK_GUEST_OUT/dd.err" || fail "the stuck read did not end with EIO"
kill -0 "$DPID" || fail "the daemon died"

log "the daemon still serves: connect again, read, disconnect"
dev2=$("$C" --socket "$SOCK" connect -t tcp -a 10.0.2.2 -s "$PORT" -n "$NQN" -i 1 -Q 32 \
  --reconnect-delay 1 --ctrl-loss-tmo 60) || fail "second connect failed"
wait_for 20 "$dev2" test -b "$dev2"
[[ $dev2 != "$dev" ]] || log "(the kernel reused $dev)"
dd if="$dev2" of=/dev/null bs=4k count=8 iflag=direct || fail "reading $dev2 failed"
"$C" --socket "$SOCK" list
kill -0 "$DPID" || fail "the daemon died"
log "a stuck device was given up; the daemon lives on"
