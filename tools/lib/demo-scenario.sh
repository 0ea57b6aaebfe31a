#!/usr/bin/env bash
# The demo's main job (run by tools/demo on this machine, or inside the QEMU guest when this kernel
# has no ublk_drv): a userspace NVMe/TCP target with a 1 GiB RAM namespace on 127.0.0.1, the
# nvmf-ublk daemon, `nvmf-ublk connect`, ext4 on the new /dev/ublkbN, a file written and read back
# with a checksum, throughput, then everything cleaned up.
set -euo pipefail
BUILD=${NVMF_UBLK_BUILD_DIR:?}
TARGET=$BUILD/tools/nvmf-target/nvmf-target
DAEMON=$BUILD/src/daemon/nvmf-ublkd
CLI=$BUILD/src/cli/nvmf-ublk
NQN=nqn.2026-01.io.nvmf-ublk:demo
WORK=$(mktemp -d /tmp/nvmf-ublk-demo.XXXXXX)
STATE=$WORK/state
MNT=$WORK/mnt
FILE_MIB=${DEMO_FILE_MIB:-256}
say() { printf '\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
  set +e
  mountpoint -q "$MNT" && umount "$MNT"
  [[ -n ${DEV:-} ]] && "$CLI" --socket "$STATE/control.sock" disconnect -n "$NQN" >/dev/null 2>&1
  [[ -n ${DPID:-} ]] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  [[ -n ${TPID:-} ]] && kill "$TPID" 2>/dev/null && wait "$TPID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

say "target: nvmf-target, $NQN, 1 GiB RAM namespace"
"$TARGET" --listen 127.0.0.1:0 --subsystem "$NQN" --ns ram:1G --log-level warning >"$WORK/target.log" 2>&1 &
TPID=$!
for _ in $(seq 100); do
  PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/target.log" | head -1)
  [[ -n $PORT ]] && break
  sleep 0.1
done
[[ -n ${PORT:-} ]] || { cat "$WORK/target.log"; exit 1; }
echo "listening on 127.0.0.1:$PORT"

say "daemon: nvmf-ublkd"
mkdir -p "$STATE"
"$DAEMON" --state-dir "$STATE" --log-level warning >"$WORK/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do
  "$CLI" --socket "$STATE/control.sock" list >/dev/null 2>&1 && break
  sleep 0.1
done

say "nvmf-ublk connect -t tcp -a 127.0.0.1 -s $PORT -n $NQN"
DEV=$("$CLI" --socket "$STATE/control.sock" connect -t tcp -a 127.0.0.1 -s "$PORT" -n "$NQN")
for _ in $(seq 100); do [[ -b $DEV ]] && break; sleep 0.1; done
"$CLI" --socket "$STATE/control.sock" list
echo "device $DEV: $(blockdev --getsize64 "$DEV") bytes, logical block $(blockdev --getss "$DEV") B"

say "mkfs.ext4 $DEV and mount"
mkfs.ext4 -q -F "$DEV"
mkdir -p "$MNT"
mount "$DEV" "$MNT"
df -h "$MNT" | tail -1

say "write ${FILE_MIB} MiB, read it back, compare checksums"
head -c $((FILE_MIB << 20)) /dev/urandom >"$WORK/src.bin"
want=$(sha256sum <"$WORK/src.bin" | cut -d' ' -f1)
t0=$(date +%s.%N)
dd if="$WORK/src.bin" of="$MNT/demo.bin" bs=1M oflag=direct status=none
sync
t1=$(date +%s.%N)
rm -f "$WORK/src.bin"
echo 3 >/proc/sys/vm/drop_caches
t2=$(date +%s.%N)
got=$(dd if="$MNT/demo.bin" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
t3=$(date +%s.%N)
python3 -c "import sys; w=$FILE_MIB/($t1-$t0); r=$FILE_MIB/($t3-$t2); print(f'write {w:.1f} MiB/s, read {r:.1f} MiB/s')"
if [[ $got != "$want" ]]; then
  echo "CHECKSUM MISMATCH: wrote $want, read $got" >&2
  exit 1
fi
echo "sha256 $got matches"

say "clean up: umount, nvmf-ublk disconnect, stop the daemon and the target"
umount "$MNT"
"$CLI" --socket "$STATE/control.sock" disconnect -n "$NQN"
DEV=
echo "demo: OK"
