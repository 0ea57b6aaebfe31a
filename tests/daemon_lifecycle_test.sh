#!/usr/bin/env bash
# daemon_lifecycle_test: nvmf-ublkd's process life cycle on any machine (no ublk driver needed):
#  - a state file of a newer format: exit 78 with a clear message, the file untouched, no socket;
#  - the systemd notification protocol (READY=1 once the socket serves, STATUS= while devices are
#    recovering, WATCHDOG=1 from the control loop, STOPPING=1), read from a NOTIFY_SOCKET;
#  - `nvmf-ublk list` shows a state-file device as recovering while its target is unreachable;
#  - SIGTERM: exit 0 within the bound, state file unchanged (the device stays for the next daemon).
# Usage: daemon_lifecycle_test.sh BUILD_DIR
set -euo pipefail
B=$1
D=$B/src/daemon/nvmf-ublkd
C=$B/src/cli/nvmf-ublk
if [[ $(id -u) -ne 0 ]]; then echo "SKIP: needs root"; exit 77; fi
command -v python3 >/dev/null || { echo "SKIP: needs python3"; exit 77; }
T=$(mktemp -d /tmp/nvmf-ublkd-lifecycle.XXXXXX)
DPID=
cleanup() {
  [[ -n $DPID ]] && kill -KILL "$DPID" 2>/dev/null
  [[ -n ${LPID:-} ]] && kill "$LPID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [[ -f $T/daemon.log ]] && tail -20 "$T/daemon.log"; exit 1; }

# 1. A newer state format is refused and left alone.
mkdir -p "$T/newer"
echo '{"version": 99, "connections": [{"future": true}]}' >"$T/newer/state.json"
cp "$T/newer/state.json" "$T/newer.orig"
rc=0
"$D" --shared-mounts --state-dir "$T/newer" >"$T/newer.log" 2>&1 || rc=$?
[[ $rc -eq 78 ]] || fail "newer state: exit $rc, want 78: $(cat "$T/newer.log")"
grep -q "format version 99" "$T/newer.log" || fail "no clear message: $(cat "$T/newer.log")"
cmp -s "$T/newer/state.json" "$T/newer.orig" || fail "the newer state file was changed"
[[ ! -e $T/newer/control.sock ]] || fail "a refusing daemon created its socket"
echo "ok: newer state format refused (exit 78), untouched"

# 2. Notifications, a recovering device, SIGTERM.
mkdir -p "$T/run"
cat >"$T/run/state.json" <<JSON
{"version": 1, "connections": [{"args": {"transport": "tcp", "traddr": "127.0.0.1", "trsvcid": "1",
 "subnqn": "nqn.2026-01.io.nvmf-ublk:lifecycle", "hostnqn": "nqn.2026-01.io.nvmf-ublk:host",
 "hostid": "12345678-1234-1234-1234-123456789abc", "reconnect_delay": 1, "ctrl_loss_tmo": 600},
 "devices": [{"nsid": 1, "dev_id": 7, "stable_id": "nguid.00112233445566778899aabbccddeeff"}]}]}
JSON
cp "$T/run/state.json" "$T/state.orig"
python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        for line in s.recv(4096).decode().splitlines():
            log.write(line + "\n")
PY
LPID=$!
for _ in $(seq 50); do [[ -S $T/notify.sock ]] && break; sleep 0.1; done
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=1500000 "$D" --shared-mounts --state-dir "$T/run" \
  --reactors 1 >"$T/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do grep -q '^READY=1' "$T/notify.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^READY=1' "$T/notify.log" || fail "no READY=1"
"$C" --socket "$T/run/control.sock" list >"$T/list.out" || fail "list failed after READY=1"
grep -Eq '^/dev/ublkb7 +1 .*recovering' "$T/list.out" || fail "list: $(cat "$T/list.out")"
"$C" --socket "$T/run/control.sock" list -o json | grep -q '"state": "recovering"' ||
  fail "list -o json has no recovering device"
grep -q '^STATUS=.*recovering 1' "$T/notify.log" || fail "no STATUS= while recovering: $(cat "$T/notify.log")"
for _ in $(seq 50); do grep -q '^WATCHDOG=1' "$T/notify.log" && break; sleep 0.1; done
grep -q '^WATCHDOG=1' "$T/notify.log" || fail "no WATCHDOG=1 within 5 s (interval 1.5 s)"
echo "ok: READY=1, STATUS=, WATCHDOG=1; list shows /dev/ublkb7 recovering"
start=$(date +%s%N)
kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
DPID=
ms=$((($(date +%s%N) - start) / 1000000))
[[ $rc -eq 0 ]] || fail "SIGTERM: exit $rc"
((ms < 10000)) || fail "SIGTERM took $ms ms"
# The listener writes what it received a moment later than the daemon exits.
for _ in $(seq 30); do grep -q '^STOPPING=1' "$T/notify.log" && break; sleep 0.1; done
grep -q '^STOPPING=1' "$T/notify.log" || fail "no STOPPING=1"
cmp -s "$T/run/state.json" "$T/state.orig" || fail "SIGTERM changed the state file"
grep -q "handed over" "$T/daemon.log" || fail "no hand-over line in the log"
echo "ok: SIGTERM -> exit 0 in $ms ms, state file unchanged"
