#!/usr/bin/env bash
# t_daemon_auth: DH-HMAC-CHAP against the kernel's nvmet-tcp (hosts/<nqn>/dhchap_*): host
# authentication with each hash and each DH group (null, ffdhe2048..8192), bidirectional
# authentication, clear refusals that leave no device (wrong secret, wrong controller secret, no
# secret, a secret file others can read), re-authentication after a port flap and after a daemon
# restart, fio verify over an authenticated connection, and no secret in logs, list output or a
# readable state file.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
source "$NVMF_UBLK_GUEST_LIB/daemon.sh"
require_cmd fio
require_bin "$D" "$C"
[[ -c /dev/ublk-control ]] || fail "no /dev/ublk-control"

NQN=nqn.2026-01.io.nvmf-ublk:auth
HOST=nqn.2014-08.org.nvmexpress:uuid:a0770000-0000-4000-8000-00000000a001
HOSTID=a0770000-0000-4000-8000-00000000a001
STATE=/run/nvmf-ublk-test
SOCK=$STATE/control.sock
H=$NVMET_CFS/hosts/$HOST

nvmet_brd_load 1 64
nvmet_subsys_create "$NQN"
nvmet_ns_add "$NQN" 1 /dev/ram0
nvmet_port_create 4420 4420
nvmet_port_link 4420 "$NQN"
nvmet_subsys_allow_host "$NQN" "$HOST"
on_exit nvmet_teardown
[[ -e $H/dhchap_key ]] || skip "nvmet has no DH-HMAC-CHAP (CONFIG_NVME_TARGET_AUTH)"

daemon_start
on_exit sh -c "pkill -KILL -x nvmf-ublkd; true"
LOG=$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log

key() { "$C" gen-dhchap-key -m "$1" -n "$HOST"; }
auth_count() { grep -c "q0: authenticated (DH-HMAC-CHAP" "$LOG" || true; }
connect() {
  "$C" --socket "$SOCK" connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" -q "$HOST" -I "$HOSTID" \
    --ctrl-loss-tmo 60 --reconnect-delay 1 "$@"
}
no_device() { ! ls /dev/ublkb* >/dev/null 2>&1 || fail "$1 left a device: $(ls /dev/ublkb*)"; }
SECRETS=()

for row in "hmac(sha256) null 1" "hmac(sha384) ffdhe2048 2" "hmac(sha512) ffdhe4096 3" \
  "hmac(sha256) ffdhe3072 0" "hmac(sha384) ffdhe6144 3" "hmac(sha512) ffdhe8192 2"; do
  read -r hash group hmac <<<"$row"
  k=$(key "$hmac")
  SECRETS+=("$k")
  _nvmet_write "$H/dhchap_key" "$k"
  _nvmet_write "$H/dhchap_hash" "$hash"
  _nvmet_write "$H/dhchap_dhgroup" "$group"
  log "host authentication: $hash, $group"
  dev=$(connect -S "$k") || fail "connect with $hash/$group failed"
  wait_for 10 "$dev" test -b "$dev"
  want=${hash#hmac(}; want=${want%)}
  grep -q "q0: authenticated (DH-HMAC-CHAP, $want, $group)" "$LOG" ||
    fail "the daemon log does not say $want/$group: $(grep -i authent "$LOG" | tail -2)"
  dd if=/dev/urandom of="$NVMF_UBLK_GUEST_OUT/blk" bs=64k count=4 status=none
  dd if="$NVMF_UBLK_GUEST_OUT/blk" of="$dev" bs=64k oflag=direct status=none
  cmp <(dd if="$dev" bs=64k count=4 iflag=direct status=none) "$NVMF_UBLK_GUEST_OUT/blk" ||
    fail "data read back differs ($hash)"
  "$C" --socket "$SOCK" disconnect -n "$NQN" >/dev/null
  wait_for 10 "$dev gone" bash -c "! test -b $dev"
done

log "bidirectional: the controller proves its own secret"
hk=$(key 1) ck=$(key 2)
SECRETS+=("$hk" "$ck")
_nvmet_write "$H/dhchap_key" "$hk"
_nvmet_write "$H/dhchap_ctrl_key" "$ck"
_nvmet_write "$H/dhchap_hash" "hmac(sha256)"
_nvmet_write "$H/dhchap_dhgroup" "ffdhe2048"

log "refusals are one clear line and leave nothing behind"
out=$(connect -S "$(key 1)" 2>&1) && fail "a wrong secret connected: $out"
echo "$out"
grep -q "rejected the host's response" <<<"$out" || fail "wrong secret: unclear error: $out"
no_device "a wrong secret"
out=$(connect -S "$hk" -C "$(key 2)" 2>&1) && fail "a wrong controller secret connected: $out"
echo "$out"
grep -q "controller failed to authenticate itself" <<<"$out" || fail "wrong ctrl secret: $out"
no_device "a wrong controller secret"
out=$(connect 2>&1) && fail "no secret connected: $out"
echo "$out"
grep -q "requires in-band authentication" <<<"$out" || fail "no secret: unclear error: $out"
no_device "no secret"
printf '%s\n' "$hk" >"$NVMF_UBLK_GUEST_OUT/host.key"
chmod 644 "$NVMF_UBLK_GUEST_OUT/host.key"
out=$(connect --dhchap-secret-file "$NVMF_UBLK_GUEST_OUT/host.key" 2>&1) &&
  fail "a world-readable secret file was used: $out"
grep -q "chmod 600" <<<"$out" || fail "secret file mode: unclear error: $out"
chmod 600 "$NVMF_UBLK_GUEST_OUT/host.key"
printf '%s\n' "$ck" >"$NVMF_UBLK_GUEST_OUT/ctrl.key"
chmod 600 "$NVMF_UBLK_GUEST_OUT/ctrl.key"

before=$(auth_count)
dev=$(connect --dhchap-secret-file "$NVMF_UBLK_GUEST_OUT/host.key" \
  --dhchap-ctrl-secret-file "$NVMF_UBLK_GUEST_OUT/ctrl.key") || fail "bidirectional connect failed"
wait_for 10 "$dev" test -b "$dev"
grep -q "controller authenticated too" "$LOG" || fail "no bidirectional authentication logged"
fio_verify "$dev" --size=16m

log "a port flap: the reconnect authenticates again"
n=$(auth_count)
nvmet_port_unlink 4420 "$NQN"
sleep 2
nvmet_port_link 4420 "$NQN"
wait_for 60 "re-authentication" bash -c "(( \$(grep -c 'q0: authenticated (DH-HMAC-CHAP' $LOG) > $n ))"
wait_for 60 "live again" bash -c "$C --socket $SOCK list -o json | grep -q '\"state\": \"live\"'"
fio_verify "$dev" --size=8m

log "a daemon restart keeps the device and authenticates again"
n=$(auth_count)
kill -TERM "$DPID"
wait "$DPID" 2>/dev/null || true
test -b "$dev" || fail "SIGTERM removed $dev"
daemon_start
wait_for 60 "re-authentication after restart" \
  bash -c "(( \$(grep -c 'q0: authenticated (DH-HMAC-CHAP' $LOG) > $n ))"
wait_for 60 "live again" bash -c "$C --socket $SOCK list -o json | grep -q '\"state\": \"live\"'"
fio_verify "$dev" --size=8m

log "secrets stay secret"
"$C" --socket "$SOCK" list -o json >"$NVMF_UBLK_GUEST_OUT/list.json"
"$C" --socket "$SOCK" list-subsys -o json >"$NVMF_UBLK_GUEST_OUT/subsys.json"
for s in "${SECRETS[@]}"; do
  b64=${s#DHHC-1:??:}; b64=${b64%:}
  for f in "$LOG" "$NVMF_UBLK_GUEST_OUT/list.json" "$NVMF_UBLK_GUEST_OUT/subsys.json"; do
    grep -qF "$b64" "$f" && fail "a secret appears in $(basename "$f")"
  done
  # Only the 0600 state file may hold them; the published device files (0644) never do.
  grep -rlF "$b64" "$STATE" | grep -vx "$STATE/state.json" && fail "a secret in a readable file"
done
for f in "$STATE"/*.json; do
  [[ -e $f ]] || continue
  expect_eq "$(stat -c %a "$f")" 600 "mode of $f"
done
"$C" --socket "$SOCK" disconnect -n "$NQN" >/dev/null
log "ok"
