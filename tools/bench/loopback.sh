#!/usr/bin/env bash
# tools/bench/loopback.sh — the engine's throughput and latency over loopback (no kernel modules):
# tools/nvmf-target (RAM namespace) pinned to one core, nvmf-perf pinned to the other, one I/O queue.
# Workloads: 4 KiB randread QD1 and QD32, 4 KiB randwrite QD32, 128 KiB randread QD8.
# Each workload runs ROUNDS times, interleaved round-robin (this machine's vCPUs change speed every
# few seconds to minutes, so a single run is noise); the table shows the median and min..max.
# Usage: tools/bench/loopback.sh [-t SECONDS] [-r ROUNDS] [--digests] [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN=5
ROUNDS=3
DIGESTS=()
BUILD=build
while [[ $# -gt 0 ]]; do
  case $1 in
    -t) SECONDS_PER_RUN=$2; shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    --digests) DIGESTS=(--hdr-digest --data-digest); shift ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "usage: $0 [-t SECONDS] [-r ROUNDS] [--digests] [--build DIR]" >&2; exit 2 ;;
  esac
done
TARGET=$BUILD/tools/nvmf-target/nvmf-target
PERF=$BUILD/tools/bench/nvmf-perf
[[ -x $TARGET && -x $PERF ]] || { echo "build first: cmake --build $BUILD" >&2; exit 1; }

NQN=nqn.2026-01.io.nvmf-ublk:bench
NCPU=$(nproc)
TCPU=$((NCPU > 1 ? 1 : 0))
OUT=$(mktemp -d)
trap 'kill $TPID 2>/dev/null || true; rm -rf "$OUT"' EXIT
taskset -c $TCPU "$TARGET" --listen 127.0.0.1:0 --subsystem $NQN --ns ram:1G --queue-size 256 \
  --log-level warning >"$OUT/target.log" 2>&1 &
TPID=$!
for _ in $(seq 100); do
  PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$OUT/target.log" | head -1)
  [[ -n $PORT ]] && break
  sleep 0.1
done
[[ -n ${PORT:-} ]] || { cat "$OUT/target.log"; exit 1; }

WORKLOADS=("randread 4096 1" "randread 4096 32" "randwrite 4096 32" "randread 131072 8")
echo "nvmf-perf over loopback: target on CPU $TCPU, initiator on CPU 0, $ROUNDS x ${SECONDS_PER_RUN}s each, ${DIGESTS[*]:-no digests}"
for r in $(seq "$ROUNDS"); do
  for w in "${WORKLOADS[@]}"; do
    read -r pattern size qd <<<"$w"
    taskset -c 0 "$PERF" -a 127.0.0.1 -s "$PORT" -n $NQN -w "$pattern" -o "$size" -Q "$qd" \
      -t "$SECONDS_PER_RUN" --warmup 1 --json "${DIGESTS[@]}" >>"$OUT/$pattern-$size-$qd.json"
  done
  echo "round $r done" >&2
done

python3 - "$OUT" "${WORKLOADS[@]}" <<'PY'
import json, statistics, sys
out = sys.argv[1]
rows = []
print(f"{'workload':<24}{'IOPS':>10}{'(min..max)':>18}{'MiB/s':>9}{'p50 us':>9}{'p99 us':>9}{'p99.9':>9}{'p99.99':>9}{'IOPS/CPU-s':>12}")
for w in sys.argv[2:]:
    pattern, size, qd = w.split()
    runs = [json.loads(l) for l in open(f"{out}/{pattern}-{size}-{qd}.json")]
    runs.sort(key=lambda r: r["iops"])
    m = runs[len(runs) // 2]
    name = f"{pattern} {int(size)//1024}K QD{qd}"
    rng = f"{runs[0]['iops']:.0f}..{runs[-1]['iops']:.0f}"
    print(f"{name:<24}{m['iops']:>10.0f}{rng:>18}{m['mib_s']:>9.1f}{m['lat_p50_us']:>9.1f}{m['lat_p99_us']:>9.1f}"
          f"{m['lat_p999_us']:>9.1f}{m['lat_p9999_us']:>9.1f}{m['iops_per_cpu_s']:>12.0f}")
PY
