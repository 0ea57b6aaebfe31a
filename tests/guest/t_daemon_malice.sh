#!/usr/bin/env bash
# t_daemon_malice: the malicious-target rows through the block device. One tools/nvmf-target per
# row runs on the HOST (tests/guest/with-malice-targets starts them; the guest reaches them at
# 10.0.2.2) and commits one protocol violation in the middle of the I/O. Here: nvmf-ublkd connects
# every row's subsystem (one device each), fio writes and verifies all devices at once, and the
# test checks that fio saw zero errors on every device, that the daemon named each violation in
# its log and reconnected, that the kernel logged no I/O error, and that the daemon is still alive
# and leaves no device behind at disconnect. The host side checks each H2CTermReq's FES.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
ROWS=${NVMF_UBLK_MALICE_ROWS:-}
[[ -n $ROWS && -s $ROWS ]] || skip "no host targets (run as guest_daemon_malice: tests/guest/with-malice-targets)"
require_cmd fio
D=$NVMF_UBLK_BUILD_DIR/src/daemon/nvmf-ublkd
C=$NVMF_UBLK_BUILD_DIR/src/cli/nvmf-ublk
require_bin "$D" "$C"
[[ -c /dev/ublk-control ]] || fail "no /dev/ublk-control"

STATE=/run/nvmf-ublk-malice
SOCK=$STATE/control.sock
LOG=$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log
# --io-timeout 2: the stalled-PDU row ends through the I/O timeout (Abort unanswered -> reset).
"$D" --state-dir "$STATE" --reactors 2 --io-timeout 2 --log-level info >"$LOG" 2>&1 &
DPID=$!
on_exit sh -c "kill $DPID 2>/dev/null; sleep 1; kill -9 $DPID 2>/dev/null; true"
wait_for 20 "control socket" test -S "$SOCK"
dmesg -C

kinds=() ports=() devs=() reasons=()
while read -r kind port digest reason; do
  flags=()
  [[ $digest == 1 ]] && flags+=(--hdr-digest)
  dev=$("$C" --socket "$SOCK" connect -t tcp -a 10.0.2.2 -s "$port" \
    -n "nqn.2026-01.io.nvmf-ublk:malice-$kind" -i 1 -Q 32 --reconnect-delay 1 \
    --ctrl-loss-tmo 60 "${flags[@]}") || fail "$kind: connect failed"
  kinds+=("$kind") ports+=("$port") devs+=("$dev") reasons+=("$reason")
done <"$ROWS"
log "${#devs[@]} devices connected"
for dev in "${devs[@]}"; do wait_for 20 "$dev" test -b "$dev"; done

# One fio, a job per device: random writes 4k-32k then a crc32c read-back of everything written;
# the violation (after the target's first commands) lands in the writes or in the read-back.
args=()
for i in "${!devs[@]}"; do
  args+=(--name="${kinds[$i]}" --filename="${devs[$i]}")
done
log "fio on every device: 4 MiB of verified random writes each"
rc=0
fio --rw=randwrite --bsrange=4k-32k --iodepth=8 --size=4M --direct=1 --ioengine=libaio \
  --verify=crc32c --verify_fatal=1 --do_verify=1 --output-format=terse --terse-version=3 \
  "${args[@]}" >"$NVMF_UBLK_GUEST_OUT/fio.terse" 2>"$NVMF_UBLK_GUEST_OUT/fio.err" || rc=$?
bad=0
while IFS=';' read -r _ _ job _ err _; do
  if [[ $err != 0 ]]; then echo "FAIL row $job: fio error $err"; bad=1; fi
done < <(grep -a '^3;' "$NVMF_UBLK_GUEST_OUT/fio.terse")
expect_eq "$(grep -ac '^3;' "$NVMF_UBLK_GUEST_OUT/fio.terse")" "${#devs[@]}" "fio job reports"
[[ $rc == 0 && $bad == 0 ]] || { tail -n 20 "$NVMF_UBLK_GUEST_OUT/fio.err"; fail "fio failed (rc $rc)"; }
log "fio: every device written and verified, zero errors"

kill -0 "$DPID" || fail "the daemon died"
for i in "${!kinds[@]}"; do
  k=${kinds[$i]} name="10.0.2.2:${ports[$i]}:"   # the controller's log name: nvmeof-ADDR:PORT
  line=$(grep -aF "$name" "$LOG" | grep -a -m1 -F -- "${reasons[$i]}") ||
    fail "$k: no daemon log line names the violation ('${reasons[$i]}')"
  echo "$k: ${line#*"$name" }"
  # live once at connect, and again after the violation's reset.
  n=$(grep -aF "$name" "$LOG" | grep -ac -- "-> live") || true
  ((n >= 2)) || fail "$k: not reconnected after the violation ($n times live)"
done
if dmesg | grep -E 'ublkb.*(I/O error|error)|Buffer I/O error' >&2; then
  fail "the kernel logged I/O errors"
fi

for dev in "${devs[@]}"; do "$C" --socket "$SOCK" disconnect -d "$dev" >/dev/null; done
ls /dev/ublkb* 2>/dev/null && fail "devices left after disconnect"
kill -0 "$DPID" || fail "the daemon died"
log "all ${#kinds[@]} rows: detected, reconnected, zero I/O errors"
