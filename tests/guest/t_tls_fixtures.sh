#!/usr/bin/env bash
# t_tls_fixtures: the TLS test bed, proven with peers nobody here wrote: nvmet-tcp on a port with
# addr_tsas=tls1.3 and tlshd (Debian 13's ktls-utils, cached by the runner) as its handshake agent,
# and the kernel's own NVMe/TCP host with its "tls" option. The PSK comes from
# `nvmf-ublk gen-tls-key`, and the TLS PSK both kernels find in the .nvme keyring under the
# identity "NVMe0R01 <hostnqn> <subnqn>" from `nvmf-ublk check-tls-key --show-psk`: the kernel
# host finding the key under the identity (version 0, and version 1) and the handshake coming up
# prove the test bed and the identity strings; no key is refused with ENOKEY. (Both kernels read
# the same keyring, so this does not check the derivation: published vectors do, in
# auth_tls_psk_test.) fio verify over the TLS connection. Then nvmf-ublkd over the same port:
# --tls --tls-key (TLS 1.3 handshake in the daemon, records in kernel TLS), fio verify; a wrong
# PSK and a plain connect refused with no device left; the PSK not in the daemon's log.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
require_cmd keyctl fio python3
C=$NVMF_UBLK_BUILD_DIR/src/cli/nvmf-ublk
require_bin "$C"
TLSHD=${NVMF_UBLK_GUEST_TLSHD:-}
[[ -x $TLSHD ]] || skip "no tlshd in the guest cache (run-guest fetches ktls-utils from trixie)"
modprobe tls || skip "no kernel TLS (tls.ko)"
modprobe nvme-tcp 2>/dev/null || true

NQN=nqn.2026-01.io.nvmf-ublk:tls
HOSTID=a0770000-0000-4000-8000-00000000b001
HOST=nqn.2014-08.org.nvmexpress:uuid:$HOSTID
OUT=$NVMF_UBLK_GUEST_OUT

nvmet_brd_load 1 64
nvmet_subsys_create "$NQN"
nvmet_ns_add "$NQN" 1 /dev/ram0
nvmet_port_create 4430 4430 127.0.0.1 addr_tsas=tls1.3
expect_eq "$(cat "$NVMET_CFS/ports/4430/addr_tsas")" tls1.3 "port tsas"
nvmet_port_link 4430 "$NQN"
nvmet_subsys_allow_host "$NQN" "$HOST"
on_exit nvmet_teardown
on_exit nvme_disconnect_all

printf '[debug]\nloglevel=1\ntls=0\nnl=0\n[authenticate]\n[authenticate.client]\n[authenticate.server]\n' \
  >"$OUT/tlshd.conf"
"$TLSHD" -c "$OUT/tlshd.conf" -s >"$OUT/tlshd.log" 2>&1 &
TPID=$!
on_exit sh -c "kill $TPID 2>/dev/null; true"
sleep 1
kill -0 $TPID || fail "tlshd did not start: $(tail -3 "$OUT/tlshd.log")"

insert_psk() {  # KEY: puts the TLS PSK of KEY for (HOST, NQN) into .nvme; prints the identity
  local lines
  mapfile -t lines < <("$C" check-tls-key -k "$1" -q "$HOST" -n "$NQN" --show-psk)
  [[ ${#lines[@]} == 2 ]] || fail "check-tls-key: ${lines[*]}"
  python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "${lines[1]}" |
    keyctl padd psk "${lines[0]}" %:.nvme >/dev/null || fail "keyctl padd into .nvme failed"
  echo "${lines[0]}"
}

connect_tls() {
  echo "transport=tcp,traddr=127.0.0.1,trsvcid=4430,nqn=$NQN,hostnqn=$HOST,hostid=$HOSTID,tls" \
    >/dev/nvme-fabrics
}
key=$("$C" gen-tls-key)

log "no key in .nvme: the kernel host refuses to connect (ENOKEY)"
connect_tls 2>"$OUT/connect.err" && fail "connected without a key"
grep -q "Required key not available" "$OUT/connect.err" ||
  fail "no key: expected ENOKEY, got: $(cat "$OUT/connect.err")"

log "the key under its version 1 identity: the kernel host finds it and TLS comes up"
mapfile -t v1 < <("$C" check-tls-key -k "$key" -q "$HOST" -n "$NQN" -I 1 --show-psk)
python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "${v1[1]}" |
  keyctl padd psk "${v1[0]}" %:.nvme >/dev/null || fail "keyctl padd into .nvme failed"
connect_tls 2>"$OUT/connect.err" || fail "v1 identity: connect failed: $(cat "$OUT/connect.err")"
nvme_wait_ns 1 "$NQN" >/dev/null
# The port requires TLS (addr_treq), so a live controller there is a TLS one.
expect_eq "$(cat "$NVMET_CFS/ports/4430/addr_treq")" required "port treq"
nvme disconnect -n "$NQN" >/dev/null
c1=$(nvme_ctrl_for "$NQN" 4430 127.0.0.1 || true)
[[ -z $c1 ]] || wait_for 10 "$c1 to go away" bash -c "[[ ! -e /sys/class/nvme/$c1 ]]"
keyctl unlink "%psk:${v1[0]}" %:.nvme >/dev/null

log "PSK identity: $(insert_psk "$key")"
keyctl show %:.nvme
log "the kernel host connects with TLS"
connect_tls 2>"$OUT/connect.err" ||
  fail "kernel TLS connect failed: $(cat "$OUT/connect.err"); $(dmesg | tail -5)"
dev=$(nvme_wait_ns 1 "$NQN")
ctrl=$(nvme_ctrl_for "$NQN" 4430 127.0.0.1)
log "nsid 1 -> $dev via $ctrl (tls_key $(cat "/sys/class/nvme/$ctrl/tls_key" 2>/dev/null || echo ?))"
fio_verify "$dev" --size=16m
nvme disconnect -n "$NQN" >/dev/null

log "nvmf-ublk: the daemon connects with --tls --tls-key (its own handshake, then kernel TLS)"
STATE=/run/nvmf-ublk-test
source "$NVMF_UBLK_GUEST_LIB/daemon.sh"
daemon_start
on_exit sh -c "pkill -KILL -x nvmf-ublkd; true"
SOCK=$STATE/control.sock
uconnect() {
  "$C" --socket "$SOCK" connect -t tcp -a 127.0.0.1 -s 4430 -n "$NQN" -q "$HOST" -I "$HOSTID" "$@"
}
out=$(uconnect --tls --tls-key "$("$C" gen-tls-key)" 2>&1) && fail "a wrong TLS PSK connected: $out"
echo "$out"
grep -q "TLS handshake failed" <<<"$out" || fail "wrong TLS PSK: unclear error: $out"
! ls /dev/ublkb* >/dev/null 2>&1 || fail "a failed TLS connect left a device"
out=$(uconnect 2>&1) && fail "a plain connect to a TLS-only port connected: $out"
echo "$out"
printf '%s\n' "$key" >"$OUT/tls.key"
chmod 600 "$OUT/tls.key"
udev=$(uconnect --tls --tls-key-file "$OUT/tls.key") || fail "nvmf-ublk TLS connect failed"
wait_for 10 "$udev" test -b "$udev"
fio_verify "$udev" --size=16m
b64=${key#NVMeTLSkey-1:??:}; b64=${b64%:}
grep -qF "$b64" "$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log" && fail "the TLS PSK is in the daemon log"
"$C" --socket "$SOCK" disconnect -n "$NQN" >/dev/null
log "ok"
