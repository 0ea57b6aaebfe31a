# Helpers for guest tests of nvmf-ublkd run by hand from the build tree (not under systemd).
# Source after common.sh. They use D (nvmf-ublkd), C (nvmf-ublk), STATE (its --state-dir) and
# NVMF_UBLK_GUEST_OUT.
D=$NVMF_UBLK_BUILD_DIR/src/daemon/nvmf-ublkd
C=$NVMF_UBLK_BUILD_DIR/src/cli/nvmf-ublk
# This run's daemon log only (the output directory outlives runs; tests read the log).
: >"$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log"

# daemon_start: nvmf-ublkd --state-dir $STATE in the background (log: $NVMF_UBLK_GUEST_OUT/
# nvmf-ublkd.log); sets DPID; returns once its control socket answers.
daemon_start() {
  "$D" --state-dir "$STATE" --reactors 2 --log-level info >>"$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log" 2>&1 &
  DPID=$!
  wait_for 30 "control socket" bash -c "$C --socket $STATE/control.sock list >/dev/null 2>&1"
}

# daemon_ext4 NQN MOUNTPOINT: connects NQN at 127.0.0.1:4420 (ctrl_loss_tmo 60 s, reconnect every
# 1 s), puts ext4 on its device and mounts it (unmounted lazily on exit); sets DEV.
daemon_ext4() {
  DEV=$("$C" --socket "$STATE/control.sock" connect -t tcp -a 127.0.0.1 -s 4420 -n "$1" \
    --ctrl-loss-tmo 60 --reconnect-delay 1)
  log "device $DEV"
  wait_for 10 "$DEV" test -b "$DEV"
  mkfs.ext4 -q -F "$DEV"
  mkdir -p "$2"
  mount "$DEV" "$2"
  on_exit sh -c "umount -l $2 2>/dev/null; true"
}

# fio_terse_ok FILE RC WHAT: fails unless fio's terse v3 report in FILE says zero errors and RC is
# 0; prints the KiB written.
fio_terse_ok() {
  local terse
  terse=$(grep -a '^3;' "$1" | tail -n1)
  [[ -n $terse ]] || fail "fio (rc $2) left no report: $(tail -n 5 "$1")"
  expect_eq "$(cut -d';' -f5 <<<"$terse")" 0 "fio error (errno) $3"
  (($2 == 0)) || fail "fio exited $2"
  cut -d';' -f47 <<<"$terse"
}

# fio_max_lat_ms GLOB [FROM_MS TO_MS]: the longest latency (ms) in fio latency logs GLOB written
# with --log_unix_epoch=1 --log_avg_msec=0 (columns: epoch ms, latency ns, ...), over the I/Os that
# completed between FROM_MS and TO_MS (epoch ms; default: all).
fio_max_lat_ms() {
  # shellcheck disable=SC2086  # GLOB is a glob
  cat $1 | awk -F', *' -v from="${2:-0}" -v to="${3:-9e18}" \
    '$1 >= from && $1 <= to && $2 > m {m = $2} END {printf "%d", m / 1000000}'
}
ms_now() { echo $(($(date +%s%N) / 1000000)); }
