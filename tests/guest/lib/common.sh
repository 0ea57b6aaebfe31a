# tests/guest/lib/common.sh — the harness side of a guest test. Source it first in every
# tests/guest/t_*.sh:
#
#   source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
#
# It also sources nvmet.sh (target fixtures) and nvme.sh (initiator-side helpers). Tests booted with
# `run-guest --systemd` can end with guest_poweroff (see there).
#
# Test contract (what tests/guest/suite relies on):
#   * A test is a bash script run INSIDE the guest as root, with `set -euo pipefail` in effect (set
#     here). Exit 0 = PASS, 77 = SKIP (call `skip REASON`), anything else = FAIL.
#   * A test cleans up after itself through `on_exit` (LIFO). The suite additionally runs
#     guest_reset between tests, so a failing test cannot poison the next one.
#   * Environment (exported by the suite; defaults here for running a test alone with
#     `tests/guest/run-guest -s tests/guest/t_x.sh`):
#       NVMF_UBLK_SOURCE_DIR   the source tree (same path as on the host)
#       NVMF_UBLK_BUILD_DIR    the build tree holding the test binaries (ctest passes it)
#       NVMF_UBLK_GUEST_OUT    a directory for this test's artefacts; read-write-shared with the host
#                              when the runner got --rw for it, otherwise guest-only
#       NVMF_UBLK_GUEST_LIB    this directory
# shellcheck shell=bash
set -euo pipefail

NVMF_UBLK_GUEST_LIB=${NVMF_UBLK_GUEST_LIB:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
NVMF_UBLK_SOURCE_DIR=${NVMF_UBLK_SOURCE_DIR:-$(cd "$NVMF_UBLK_GUEST_LIB/../../.." && pwd)}
NVMF_UBLK_BUILD_DIR=${NVMF_UBLK_BUILD_DIR:-$NVMF_UBLK_SOURCE_DIR/build}
NVMF_UBLK_GUEST_OUT=${NVMF_UBLK_GUEST_OUT:-$(mktemp -d /tmp/nvmf-ublk-test.XXXXXX)}
export NVMF_UBLK_GUEST_LIB NVMF_UBLK_SOURCE_DIR NVMF_UBLK_BUILD_DIR NVMF_UBLK_GUEST_OUT
mkdir -p "$NVMF_UBLK_GUEST_OUT"

# Never run against the host's kernel: these scripts load modules and rewrite configfs. The guest
# is recognised by the runner's kernel command line.
if ! grep -q 'nvmf_ublk.init=' /proc/cmdline 2>/dev/null; then
  echo "$(basename "$0"): this is a guest test; run it with tests/guest/run-guest -s $0" >&2
  exit 2
fi

_T0=$(date +%s.%N)
# log MSG...: a progress line with the seconds since the test started.
log() { printf '[%7.2fs] %s\n' "$(echo "$(date +%s.%N) $_T0" | awk '{print $1 - $2}')" "$*"; }
# skip REASON: ends the test as SKIPPED (exit 77); the suite shows the reason.
skip() { echo "SKIP: $*" >&2; exit 77; }
# fail MSG: ends the test as FAILED with a reason line the suite shows.
fail() { echo "FAIL: $*" >&2; exit 1; }
# require_cmd CMD...: skip unless every command exists.
require_cmd() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c not installed"; done
}
# require_bin PATH...: skip unless every (built) binary exists; for test binaries in the build dir.
require_bin() {
  local b
  for b in "$@"; do [[ -x $b ]] || skip "$b not built"; done
}

# on_exit CMD...: run CMD at exit (any exit: pass, fail, skip), last registered first. Failures of
# cleanup commands are reported but do not change the test's status.
_ON_EXIT=()
on_exit() { _ON_EXIT+=("$(printf '%q ' "$@")"); }
_run_on_exit() {
  local rc=$? i
  set +e
  trap - ERR
  for ((i = ${#_ON_EXIT[@]} - 1; i >= 0; i--)); do
    eval "${_ON_EXIT[i]}" || echo "cleanup failed: ${_ON_EXIT[i]}"
  done
  exit "$rc"
}
trap _run_on_exit EXIT
# A command that fails under set -e names itself, so a FAIL never comes without a reason (-E: also
# inside functions and command substitutions; stderr, so $(...) captures stay clean).
set -E
_on_err() {
  local rc=$?
  [[ $rc == 77 ]] && return        # a skip propagating out of a $(...)
  [[ $BASH_COMMAND == return* ]] && return   # a helper's return: its caller's line is reported
  echo "FAIL: ${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}: \"$BASH_COMMAND\" exited $rc" >&2
}
trap _on_err ERR

# wait_for SECONDS WHAT CMD...: poll CMD every 0.1 s until it succeeds; fail naming WHAT on timeout.
wait_for() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s%N) + secs * 1000000000))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s%N) < deadline)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}
# expect_eq ACTUAL EXPECTED WHAT: fail unless equal.
expect_eq() {
  [[ $1 == "$2" ]] || fail "$3: got '$1', expected '$2'"
}

# fio_verify DEV [FIO ARGS...]: 4 KiB random writes with crc32c checksums then a verifying read
# pass over --size (default 16m) of DEV; fails on any error or mismatch. Extra args override.
fio_verify() {
  local dev=$1
  shift
  fio --name=verify --filename="$dev" --rw=randwrite --bs=4k --iodepth=16 --ioengine=io_uring \
    --direct=1 --size=16m --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse \
    --terse-version=3 "$@" >"$NVMF_UBLK_GUEST_OUT/fio-$(basename "$dev").terse" ||
    fail "fio write+verify on $dev failed"
}

# fio_bg_start NAME DEV [FIO ARGS...]: starts 4 KiB random writes with crc32c checksums on DEV in
# the background, each write verified soon after (--verify_backlog), until fio_bg_stop NAME (or
# --runtime, default 600 s). For "X while I/O runs" tests. Extra args override (e.g. --size=16m,
# --rate_iops=500, --rw=randrw).
declare -A _FIO_BG=()
fio_bg_start() {
  local name=$1 dev=$2
  shift 2
  fio --name="$name" --filename="$dev" --rw=randwrite --bs=4k --iodepth=8 --ioengine=io_uring \
    --direct=1 --size=32m --time_based --runtime=600 --verify=crc32c --verify_backlog=128 \
    --verify_fatal=1 --output-format=terse --terse-version=3 "$@" \
    >"$NVMF_UBLK_GUEST_OUT/fio-$name.terse" 2>&1 &
  _FIO_BG[$name]=$!
}
# fio_bg_stop NAME: stops the fio started by fio_bg_start NAME (SIGINT: fio reports and exits) and
# fails the test unless it was still running, reported no error (no I/O error, no verify mismatch)
# and wrote something.
fio_bg_stop() {
  local name=$1 pid=${_FIO_BG[$1]} out=$NVMF_UBLK_GUEST_OUT/fio-$1.terse rc=0 terse
  unset "_FIO_BG[$name]"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || rc=$?
    fail "fio $name ended before fio_bg_stop (rc $rc): $(tail -n 3 "$out")"
  fi
  kill -INT "$pid"
  wait "$pid" || rc=$?   # 128 after SIGINT even when all went well: judge by the report
  terse=$(grep -a '^3;' "$out" | tail -n1)
  [[ -n $terse ]] || fail "fio $name (rc $rc) left no report: $(tail -n 3 "$out")"
  # terse v3: field 5 = error (errno), field 47 = KiB written
  [[ $(cut -d';' -f5 <<<"$terse") == 0 ]] || fail "fio $name: I/O or verify error: $(grep -av '^3;' "$out" | tail -n 3)"
  (($(cut -d';' -f47 <<<"$terse") > 0)) || fail "fio $name wrote nothing"
}

# guest_reset: back to a freshly booted guest as far as the tests can tell: no nvme-fabrics
# controllers, no nvmet configuration, no null_blk/brd devices (so the next test can load them with
# its own parameters). Used by the suite between tests; safe to call when nothing is set up.
guest_reset() {
  nvme disconnect-all >/dev/null 2>&1 || true
  nvmet_teardown || true
  modprobe -r brd null_blk 2>/dev/null || true
}

# --- systemd mode (run-guest --systemd): systemd is PID 1, the test runs as run-guest-test.service.

# guest_is_systemd: true when the guest runs systemd as PID 1.
guest_is_systemd() { [[ $(readlink /proc/1/exe 2>/dev/null) == */systemd ]]; }
# require_systemd: skip unless the guest was booted with run-guest --systemd.
require_systemd() { guest_is_systemd || skip "needs systemd as PID 1 (run-guest --systemd)"; }

# guest_poweroff [--expect RE] [--reject RE] [--order RE1 RE2]...: ENDS the test by powering the
# guest off through systemd (`systemctl poweroff`), so units are stopped as at a real shutdown.
# Must be the test's last step (it does not return), in a boot's only test (a suite stops here).
# The on_exit cleanups do NOT run: what is still set up is what the shutdown acts on. The runner
# then reports 0 if the guest powered off cleanly through systemd, else 1, and checks the shutdown
# journal (journal lines from this call to the power-off, units' ExecStop output included, merged by
# time with the kernel log "[T] kernel: MSG"; all REs are grep -E): every --expect RE matches a
# line, no line matches a --reject RE, and for --order the first line matching RE1 comes before
# the first line matching RE2 (both present). A failed check prints "run-guest: FAIL: ..." and
# makes the status 1. The log is left in $NVMF_UBLK_GUEST_OUT/shutdown-journal.log on the host.
guest_poweroff() {
  local checks=() desc=()
  while [[ $# -gt 0 ]]; do
    case $1 in
      --expect|--reject) [[ $# -ge 2 ]] || fail "guest_poweroff: $1 needs a regex"
        checks+=("${1#--}"$'\t'"$2"); desc+=("$1 '$2'"); shift 2 ;;
      --order) [[ $# -ge 3 ]] || fail "guest_poweroff: --order needs two regexes"
        checks+=("order"$'\t'"$2"$'\t'"$3"); desc+=("--order '$2' '$3'"); shift 3 ;;
      *) fail "guest_poweroff: unknown argument $1" ;;
    esac
  done
  require_systemd
  log "guest_poweroff: systemctl poweroff${desc:+; shutdown journal checks: ${desc[*]}}"
  _ON_EXIT=()
  trap - ERR EXIT
  set +e
  bash "$NVMF_UBLK_GUEST_LIB/guest-systemd" request-poweroff "${checks[@]}" ||
    { echo "FAIL: guest_poweroff: systemctl poweroff failed" >&2; exit 1; }
  # systemd stops this unit (SIGTERM) as part of the shutdown: wait for it here.
  exec sleep infinity
}

# shellcheck source=tests/guest/lib/nvmet.sh
source "$NVMF_UBLK_GUEST_LIB/nvmet.sh"
# shellcheck source=tests/guest/lib/nvme.sh
source "$NVMF_UBLK_GUEST_LIB/nvme.sh"
# shellcheck source=tests/guest/lib/ublk.sh
source "$NVMF_UBLK_GUEST_LIB/ublk.sh"
