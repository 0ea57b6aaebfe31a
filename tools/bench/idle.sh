#!/usr/bin/env bash
# tools/bench/idle.sh — what a connected, idle controller costs: nvmf-perf connects to
# tools/nvmf-target (one I/O queue per reactor), runs 1 s of QD1 reads, then stays connected and
# idle for -t seconds and reports the process's CPU time and wakeups (context switches) meanwhile.
# Several builds (--build DIR, repeatable; default build/) are compared in interleaved rounds, each
# against its own target. Usage: tools/bench/idle.sh [-t SECONDS] [-r ROUNDS] [-c QUEUES]
#                                                   [--build DIR]...
set -euo pipefail
cd "$(dirname "$0")/../.."
IDLE=10 ROUNDS=3 QUEUES=2
BUILDS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -t) IDLE=$2; shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    -c) QUEUES=$2; shift 2 ;;
    --build) BUILDS+=("$2"); shift 2 ;;
    *) echo "usage: $0 [-t SECONDS] [-r ROUNDS] [-c QUEUES] [--build DIR]..." >&2; exit 2 ;;
  esac
done
((${#BUILDS[@]})) || BUILDS=(build)
NQN=nqn.2026-01.io.nvmf-ublk:idle
OUT=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$OUT"' EXIT
PORTS=()
for b in "${BUILDS[@]}"; do
  [[ -x $b/tools/nvmf-target/nvmf-target && -x $b/tools/bench/nvmf-perf ]] ||
    { echo "$b: build nvmf-target and nvmf-perf first" >&2; exit 1; }
  log=$OUT/target-${#PORTS[@]}.log
  "$b/tools/nvmf-target/nvmf-target" --listen 127.0.0.1:0 --subsystem $NQN --ns ram:64M \
    --log-level warning >"$log" 2>&1 &
  PIDS+=($!)
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$log" | head -1)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { cat "$log"; exit 1; }
  PORTS+=("$port")
done
echo "idle cost: ${QUEUES} I/O queue(s), ${IDLE} s idle after 1 s of QD1 reads, $ROUNDS round(s)"
for r in $(seq "$ROUNDS"); do
  for i in "${!BUILDS[@]}"; do
    "${BUILDS[$i]}/tools/bench/nvmf-perf" -a 127.0.0.1 -s "${PORTS[$i]}" -n $NQN -w randread \
      -o 4096 -Q 1 -c "$QUEUES" -t 1 --warmup 0 --idle "$IDLE" --json >>"$OUT/$i.json"
  done
done
python3 - "$OUT" "$IDLE" "${BUILDS[@]}" <<'PY'
import json, statistics, sys
out, idle, builds = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
print(f"{'build':<32}{'wakeups/s':>12}{'(min..max)':>16}{'CPU ms/s':>10}")
for i, b in enumerate(builds):
    runs = [json.loads(l) for l in open(f"{out}/{i}.json")]
    w = sorted(r["idle_wakeups"] / idle for r in runs)
    c = sorted(r["idle_cpu_s"] * 1e3 / idle for r in runs)
    print(f"{b:<32}{statistics.median(w):>12.2f}{f'{w[0]:.2f}..{w[-1]:.2f}':>16}{statistics.median(c):>10.3f}")
PY
