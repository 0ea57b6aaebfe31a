#!/usr/bin/env bash
# t_daemon_discovery: discovery-driven operation against nvmet-tcp's discovery service. Port 4420
# serves subsystems A and B and refers to port 4421, which serves B and C: connect-all through
# 4420 gives A, B (two paths, one device) and C; again changes nothing and exits 0 (-v: each
# record already connected); connect is idempotent, -D adds an association (-T sets its IP TOS);
# fio verify over a connection with SQ flow control disabled (nvmet's TREQ asks for it: C2HData
# carries SUCCESS, no response capsule); disconnect-all removes all; discovery.conf with no
# arguments does the same as the explicit command (--quiet: nothing on stderr). Persistent: D
# linked at runtime becomes a device through the discovery-log-change AEN within 15 s and goes
# after the grace period once unlinked; the discovery port down and back (E linked meanwhile)
# reconnects and reconciles; after a daemon restart the discovery controller is back, still owns
# what it connected (E goes when unlinked) and still reacts to the AEN; a persistent connect-all
# to a port that is not up yet is kept and connects once the port is there.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
source "$NVMF_UBLK_GUEST_LIB/daemon.sh"
require_cmd fio jq
require_bin "$D" "$C"

P=nqn.2026-01.io.nvmf-ublk:disc
A=$P-a B=$P-b CC=$P-c DD=$P-d E=$P-e
STATE=/run/nvmf-ublk-disc
SOCK=$STATE/control.sock
export NVMF_UBLK_NVME_CONFIG_DIR=$NVMF_UBLK_GUEST_OUT/etc-nvme
rm -rf "$NVMF_UBLK_NVME_CONFIG_DIR"
nvmet_brd_load 6 32
nvmet_target_up "$A" 4420 /dev/ram0
nvmet_target_up "$B" "4420 4421" /dev/ram1
nvmet_target_up "$CC" 4421 /dev/ram2
nvmet_referral_add 4420 to4421 127.0.0.1 4421
on_exit nvmet_teardown
daemon_start
on_exit sh -c "pkill -KILL -x nvmf-ublkd; true"

cli() { "$C" --socket "$SOCK" "$@"; }
ndev() { cli list -o json | jq '.devices | length'; }
has_dev() { cli list -o json | jq -e --arg n "$1" '[.devices[] | select(.subnqn == $n)] | length > 0'; }
no_dev() { ! has_dev "$1"; }
ctrls() { cli list -o json | jq '.controllers | length'; }

log "connect-all through port 4420 (referral to 4421)"
out=$(cli connect-all -t tcp -a 127.0.0.1 -s 4420 -c 1 -l 30) || fail "connect-all failed"
expect_eq "$(wc -l <<<"$out")" 3 "devices printed: $out"
expect_eq "$(ndev)" 3 "devices"
expect_eq "$(cli list -o json | jq --arg n "$B" '[.devices[] | select(.subnqn == $n)][0].paths | length')" 2 \
  "paths of B (4420 and 4421)"
expect_eq "$(ctrls)" 4 "controllers"
[[ -s $NVMF_UBLK_NVME_CONFIG_DIR/hostnqn && -s $NVMF_UBLK_NVME_CONFIG_DIR/hostid ]] ||
  fail "the generated host identity was not saved"
cli list-subsys
log "again: nothing changes, exit 0"
out2=$(cli connect-all -v -t tcp -a 127.0.0.1 -s 4420 -c 1 -l 30 2>"$NVMF_UBLK_GUEST_OUT/v.err") ||
  fail "second connect-all failed: $(cat "$NVMF_UBLK_GUEST_OUT/v.err")"
expect_eq "$out2" "$out" "devices of the second connect-all"
expect_eq "$(grep -c '^nvmf-ublk: already-connected ' "$NVMF_UBLK_GUEST_OUT/v.err")" 4 \
  "records said to be connected already (-v): $(cat "$NVMF_UBLK_GUEST_OUT/v.err")"
expect_eq "$(ctrls)" 4 "controllers after the second connect-all"
dev=$(cli list -o json | jq -r --arg n "$A" '.devices[] | select(.subnqn == $n) | .path')
wait_for 10 "$dev" test -b "$dev"
fio_verify "$dev" --size=8m
grep -q 'nvmeof-127.0.0.1:4420:q[1-9].*reads complete in C2HData (SUCCESS flag)' \
  "$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log" || fail "no read completed through C2HData SUCCESS"
log "connect is idempotent; -D makes a second association (from 127.0.0.2 on lo, IP TOS 0x28)"
expect_eq "$(cli connect -t tcp -a 127.0.0.1 -s 4420 -n "$A")" "$dev" "connect of a connected subsystem"
expect_eq "$(ctrls)" 4 "controllers after the idempotent connect"
dup=$(cli connect -D -i 2 -w 127.0.0.2 -f lo -T 40 -t tcp -a 127.0.0.1 -s 4420 -n "$A")
expect_eq "$dup" "$dev" "connect -D (a second path of the same device)"
expect_eq "$(ctrls)" 5 "controllers after connect -D"
# Its admin and 2 I/O queues (-i 2): source address (-w), bound device (-f) and TOS (-T) as asked.
socks=$(ss -tn --tos dst 127.0.0.1:4420)
expect_eq "$(grep -c '127\.0\.0\.2%lo:[0-9]* .*tos:0x28' <<<"$socks")" 3 "connections of connect -D: $socks"
cli disconnect-all >/dev/null || fail "disconnect-all"
expect_eq "$(ndev)" 0 "devices after disconnect-all"
expect_eq "$(ctrls)" 0 "controllers after disconnect-all"

log "discovery.conf, no arguments"
printf '# the fabric\n-t tcp -a 127.0.0.1 -s 4420\n' >"$NVMF_UBLK_NVME_CONFIG_DIR/discovery.conf"
out3=$(cli connect-all --quiet -c 1 -l 30 2>"$NVMF_UBLK_GUEST_OUT/q.err") ||
  fail "connect-all from discovery.conf failed: $(cat "$NVMF_UBLK_GUEST_OUT/q.err")"
expect_eq "$(cat "$NVMF_UBLK_GUEST_OUT/q.err")" "" "what --quiet printed on stderr"
expect_eq "$(wc -l <<<"$out3")" 3 "devices from discovery.conf"
expect_eq "$(ctrls)" 4 "controllers from discovery.conf"
# nvmet lists the current discovery subsystem, A, B and the referral on 4420; C on 4421.
nqns=$(cli discover -o json | jq -r '[.records[], .referrals[].records[]] |
  map(select(.subtype == "nvme subsystem") | .subnqn) | unique | join(" ")')
expect_eq "$nqns" "$A $B $CC" "NVM subsystems discovered through discovery.conf"
cli disconnect-all >/dev/null
expect_eq "$(ndev)" 0 "devices after the second disconnect-all"

log "persistent discovery controller"
cli connect-all -p --grace-period 5 -t tcp -a 127.0.0.1 -s 4420 -c 1 -l 60 >/dev/null ||
  fail "persistent connect-all"
expect_eq "$(ndev)" 3 "devices (persistent)"
dc_live() { cli list -o json | jq -e '.discovery[0].state == "live"'; }
wait_for 20 "the discovery controller live" dc_live
nvmet_subsys_create "$DD"
nvmet_ns_add "$DD" 1 /dev/ram3
t=$(date +%s)
nvmet_port_link 4420 "$DD"
wait_for 15 "D's device through the AEN" has_dev "$DD"
log "D connected $(($(date +%s) - t)) s after the link"
nvmet_port_unlink 4420 "$DD"
sleep 2
has_dev "$DD" >/dev/null || fail "D went before the grace period"
cli list-subsys | tee "$NVMF_UBLK_GUEST_OUT/list-subsys.txt"
wait_for 30 "D's device gone after the grace period" no_dev "$DD"

log "the discovery port down, E linked, the port back"
nvmet_port_unlink 4420 "$A"
nvmet_port_unlink 4420 "$B"
wait_for 20 "the discovery controller lost" bash -c "! $C --socket $SOCK list -o json | jq -e '.discovery[0].state == \"live\"'"
nvmet_subsys_create "$E"
nvmet_ns_add "$E" 1 /dev/ram4
sleep 3
nvmet_port_link 4420 "$A"
nvmet_port_link 4420 "$B"
nvmet_port_link 4420 "$E"
wait_for 60 "E's device after the port came back" has_dev "$E"
expect_eq "$(ndev)" 4 "devices after the port came back (A, B, C, E)"

log "daemon restart keeps the persistent discovery controller and what it owns"
kill -TERM "$DPID"
wait "$DPID" || true
daemon_start
wait_for 30 "the discovery controller live after the restart" dc_live
wait_for 60 "every device recovered" bash -c "[[ \$($C --socket $SOCK list -o json | jq '[.devices[] | select(.state == \"live\")] | length') == 4 ]]"
nvmet_port_unlink 4420 "$E"
wait_for 40 "E (connected before the restart) gone after the grace period" no_dev "$E"
nvmet_port_link 4420 "$DD"
wait_for 15 "D's device through the AEN after the restart" has_dev "$DD"

log "persistent connect-all to a discovery port that is not there yet: kept, retried"
if out=$(cli connect-all -p --grace-period 5 -t tcp -a 127.0.0.1 -s 4423 -c 1 -l 60 2>&1); then
  fail "connect-all to a closed port succeeded: $out"
fi
grep -q 'kept as a persistent discovery controller' <<<"$out" || fail "unexpected error: $out"
expect_eq "$(cli list -o json | jq '.discovery | length')" 2 "discovery controllers (one retrying)"
F=$P-f
nvmet_subsys_create "$F"
nvmet_ns_add "$F" 1 /dev/ram5
nvmet_port_unlink 4420 "$DD"
nvmet_port_create 4423 4423
nvmet_port_link 4423 "$F"
wait_for 60 "F's device once port 4423 answers" has_dev "$F"

cli disconnect-all >/dev/null || fail "final disconnect-all"
expect_eq "$(ndev)" 0 "devices at the end"
expect_eq "$(cli list -o json | jq '.discovery | length')" 0 "discovery controllers at the end"
log "PASS"
