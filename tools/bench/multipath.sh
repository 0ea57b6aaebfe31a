#!/usr/bin/env bash
# tools/bench/multipath.sh — multipath over loopback (no kernel modules): tools/nvmf-target with two
# listeners of one subsystem (RAM namespace) pinned to one core, nvmf-mp-bench (block I/O through
# the namespace head, as /dev/ublkbN gets it) pinned to the other.
#
# 1. Throughput, 2 paths vs 1: 4 KiB randread QD32, interleaved A/B rounds (this machine's vCPUs
#    change speed every few seconds to minutes: compare within a round), median and range, ratio.
# 2. What a cut of the active path costs: policy failover, the path carrying the I/O dies (its
#    connections get a C2HTermReq and every reconnect is refused) 3 s into the run. Printed: the
#    longest time the device completed nothing, and errors (must be 0). Reads go to the other
#    path at once; cut-off writes wait KATO + CQT first (TP 4129 ghost-write safety), unless
#    --no-ghost-write-hold.
# Usage: tools/bench/multipath.sh [-t SECONDS] [-r ROUNDS] [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN=5
ROUNDS=3
BUILD=build
while [[ $# -gt 0 ]]; do
  case $1 in
    -t) SECONDS_PER_RUN=$2; shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "usage: $0 [-t SECONDS] [-r ROUNDS] [--build DIR]" >&2; exit 2 ;;
  esac
done
TARGET=$BUILD/tools/nvmf-target/nvmf-target
BENCH=$BUILD/tools/bench/nvmf-mp-bench
[[ -x $TARGET && -x $BENCH ]] || { echo "build first: cmake --build $BUILD" >&2; exit 1; }

NQN=nqn.2026-01.io.nvmf-ublk:mpbench
NCPU=$(nproc)
TCPU=$((NCPU > 1 ? 1 : 0))
OUT=$(mktemp -d)
FIFO=$OUT/control
TPID=
cleanup() {
  [[ -n $TPID ]] && kill "$TPID" 2>/dev/null || true
  exec 9>&- 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT
mkfifo "$FIFO"
taskset -c $TCPU "$TARGET" --listen 127.0.0.1:0 --listen 127.0.0.1:0 --subsystem $NQN \
  --ns ram:1G --queue-size 256 --control "$FIFO" --log-level warning >"$OUT/target.log" 2>&1 &
TPID=$!
exec 9>"$FIFO"  # keep the control FIFO open for the target's whole life
for _ in $(seq 100); do
  mapfile -t PORTS < <(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$OUT/target.log")
  ((${#PORTS[@]} == 2)) && break
  sleep 0.1
done
((${#PORTS[@]} == 2)) || { cat "$OUT/target.log"; exit 1; }
control() { echo "$*" >&9; sleep 0.2; }

echo "nvmf-mp-bench over loopback: target on CPU $TCPU (ports ${PORTS[*]}), initiator on CPU 0"
echo
echo "1. 4 KiB randread QD32, 1 path vs 2 paths (round-robin), $ROUNDS x ${SECONDS_PER_RUN}s each"
for r in $(seq "$ROUNDS"); do
  taskset -c 0 "$BENCH" -a 127.0.0.1 -s "${PORTS[0]}" -n $NQN -w randread -Q 32 \
    -t "$SECONDS_PER_RUN" --json >>"$OUT/one.json"
  taskset -c 0 "$BENCH" -a 127.0.0.1 -s "${PORTS[0]},${PORTS[1]}" -n $NQN -w randread -Q 32 \
    -t "$SECONDS_PER_RUN" --json >>"$OUT/two.json"
  echo "  round $r done" >&2
done

echo
echo "2. the active path cut 3 s into an 8 s run (policy failover, QD32)"
cut_run() {  # cut_run NAME BENCH-ARGS...
  local name=$1
  shift
  taskset -c 0 "$BENCH" -a 127.0.0.1 -s "${PORTS[0]},${PORTS[1]}" -n $NQN -p failover -Q 32 \
    -o 4096 -t 8 --warmup 1 --json "$@" >"$OUT/cut-$name.json" &
  local pid=$!
  sleep 4  # warm-up 1 s + 3 s
  control "fault port=${PORTS[0]},term-req=1000000,cut-after=0"
  wait $pid || true
  control "fault clear"
  sleep 1.5  # the cut path reconnects before the next run
}
cut_run read -w randread
cut_run write-hold -w randwrite
cut_run write-nohold -w randwrite --no-ghost-write-hold

python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def rows(name):
    return [json.loads(l) for l in open(f"{out}/{name}.json") if l.strip()]
one, two = rows("one"), rows("two")
def med(xs): return statistics.median(xs)
i1, i2 = [r["iops"] for r in one], [r["iops"] for r in two]
ratios = [b / a for a, b in zip(i1, i2) if a > 0]
print(f"{'':<10}{'IOPS median':>14}{'(min..max)':>22}{'p99 us':>10}{'errors':>8}")
for name, rs, xs in (("1 path", one, i1), ("2 paths", two, i2)):
    print(f"{name:<10}{med(xs):>14.0f}{f'({min(xs):.0f}..{max(xs):.0f})':>22}"
          f"{med([r['lat_p99_us'] for r in rs]):>10.1f}{sum(r['errors'] for r in rs):>8}")
print(f"2 paths / 1 path, per round: {', '.join(f'{x:.2f}' for x in ratios)} "
      f"(median {med(ratios):.2f})")
print()
print(f"{'path cut':<34}{'longest gap ms':>16}{'ended s':>8}{'max lat ms':>12}{'failovers':>11}"
      f"{'held':>6}{'errors':>8}")
labels = {"read": "randread", "write-hold": "randwrite, ghost-write hold",
          "write-nohold": "randwrite, --no-ghost-write-hold"}
for name in ("read", "write-hold", "write-nohold"):
    r = rows(f"cut-{name}")[0]
    print(f"{labels[name]:<34}{r['max_gap_ms']:>16.1f}{r['max_gap_at_s']:>8.1f}"
          f"{r['lat_max_us'] / 1000:>12.1f}{r['failovers']:>11}{r['held']:>6}{r['errors']:>8}")
PY
