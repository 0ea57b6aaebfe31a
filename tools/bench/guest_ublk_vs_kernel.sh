#!/usr/bin/env bash
# tools/bench/guest_ublk_vs_kernel.sh — run inside the QEMU guest:
#   tests/guest/run-guest -s tools/bench/guest_ublk_vs_kernel.sh
# fio 4 KiB randread at QD1 and QD32 through /dev/ublkbN (nvmf-ublk) and through /dev/nvmeXnY (the
# kernel's nvme-tcp) against the same nvmet-tcp namespace in the same boot, interleaved, and prints
# the ratio. The guest is software-emulated (~100x slower than native): the ratio is what means
# something, not the absolute IOPS.
set -euo pipefail
source "$(dirname "$0")/../../tests/guest/lib/common.sh"
BUILD=${NVMF_UBLK_BUILD_DIR:?}
D=$BUILD/src/daemon/nvmf-ublkd
C=$BUILD/src/cli/nvmf-ublk
NQN=nqn.2026-01.io.nvmf-ublk:bench
RUNTIME=${RUNTIME:-8}
ROUNDS=${ROUNDS:-2}
nvmet_brd_load 1 256
nvmet_target_up "$NQN" 4420 /dev/ram0
on_exit nvmet_teardown
dd if=/dev/urandom of=/dev/ram0 bs=1M count=256 status=none

STATE=/run/nvmf-ublk-bench
"$D" --state-dir $STATE --reactors 2 --log-level warning &
DPID=$!
on_exit sh -c "kill $DPID; sleep 1"
wait_for 20 "daemon" bash -c "$C --socket $STATE/control.sock list >/dev/null 2>&1"
ublk=$("$C" --socket $STATE/control.sock connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" -i 2)
on_exit "$C" --socket $STATE/control.sock disconnect -n "$NQN"
nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" -i 2 >/dev/null
on_exit nvme disconnect -n "$NQN"
kdev=$(nvme_wait_ns 1 "$NQN")
wait_for 10 "$ublk" test -b "$ublk"

iops() {  # DEV QD -> IOPS
  fio --name=b --filename="$1" --rw=randread --bs=4k --iodepth="$2" --ioengine=io_uring --direct=1 \
    --time_based --runtime="$RUNTIME" --ramp_time=1 --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))'
}
declare -A sum
for r in $(seq "$ROUNDS"); do
  for qd in 1 32; do
    for dev in "$ublk" "$kdev"; do
      v=$(iops "$dev" "$qd")
      echo "round $r qd $qd $dev: $v IOPS"
      sum[$dev:$qd]=$(( ${sum[$dev:$qd]:-0} + v ))
    done
  done
done
printf '\n%-22s %14s %14s %8s\n' "4 KiB randread" "nvmf-ublk" "kernel nvme" "ratio"
for qd in 1 32; do
  u=$(( sum[$ublk:$qd] / ROUNDS )) k=$(( sum[$kdev:$qd] / ROUNDS ))
  printf '%-22s %14s %14s %8s\n' "QD$qd" "$u ($ublk)" "$k ($kdev)" "$(python3 -c "print(f'{$u/$k:.2f}')")"
done
