# ublk helpers for guest tests (sourced by common.sh).
# shellcheck shell=bash

# kill_quiet PID: SIGTERM, ignoring a process that is already gone.
kill_quiet() { kill -TERM "$1" 2>/dev/null || true; }

# ublk_ramdisk_start NAME TIMEOUT ARGS...: starts $NVMF_UBLK_BUILD_DIR/src/ublk/ublk_ramdisk ARGS in
# the background (log in $NVMF_UBLK_GUEST_OUT/NAME.log), waits up to TIMEOUT seconds until it
# serves, and sets DEV (its /dev/ublkbN) and PID; the process is stopped at exit.
ublk_ramdisk_start() {
  local name=$1 timeout=$2 ready=$NVMF_UBLK_GUEST_OUT/$1.ready
  shift 2
  rm -f "$ready"
  "$NVMF_UBLK_BUILD_DIR/src/ublk/ublk_ramdisk" "$@" --ready-file "$ready" \
    >"$NVMF_UBLK_GUEST_OUT/$name.log" 2>&1 &
  PID=$!
  on_exit kill_quiet "$PID"
  wait_for "$timeout" "$name to serve" test -s "$ready"
  DEV=$(<"$ready")
  [[ -b $DEV ]] || fail "$name: $DEV is not a block device"
  log "$name: $DEV (pid $PID)"
}
