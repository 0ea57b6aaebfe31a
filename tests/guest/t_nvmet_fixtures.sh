#!/usr/bin/env bash
# t_nvmet_fixtures: the lib/nvmet.sh fixtures do what later tests rely on, checked from both sides
# (configfs read-back on the target, the kernel initiator's sysfs / nvme-cli view on the host):
#   * memory-backed null_blk with 4 KiB blocks next to a 512 B brd namespace;
#   * allowed hosts: a host not on the list is refused, a listed one gets in;
#   * two ports = two paths of one subsystem (native multipath), namespace 2 in ANA group 2;
#   * while fio write+verify runs on namespace 2: ANA state change to inaccessible and back, and a
#     port removed (path down, reconnecting) and restored (path live again), with no I/O error;
#   * a discovery referral shows up in the discovery log.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
require_cmd nvme fio jq

NQN=nqn.2026-01.io.nvmf-ublk:guest-fixtures
uuid() { cat /proc/sys/kernel/random/uuid; }
# Each host identity needs its own host ID: the kernel refuses one host ID under two host NQNs.
HOST_OK_ID=$(uuid) HOST_BAD_ID=$(uuid)
HOST_OK=nqn.2014-08.org.nvmexpress:uuid:$HOST_OK_ID
HOST_BAD=nqn.2014-08.org.nvmexpress:uuid:$HOST_BAD_ID
on_exit nvme_disconnect_all
on_exit nvmet_teardown   # (LIFO: runs after the disconnect)

log "backing: brd 64 MiB (512 B) + null_blk 64 MiB memory-backed (4 KiB)"
nvmet_brd_load 1 64
ns2=$(nvmet_nullb_create fx4k 64 4096)
[[ -b $ns2 ]] || fail "nvmet_nullb_create gave no block device: $ns2"
expect_eq "$(blockdev --getss "$ns2")" 4096 "logical block size of $ns2"

log "target: $NQN on ports 4420 + 4421, nsid 2 in ANA group 2"
nvmet_subsys_create "$NQN" attr_serial=fixtures01
nvmet_ns_add "$NQN" 1 /dev/ram0
nvmet_ns_add "$NQN" 2 "$ns2" ana_grpid=2
for svc in 4420 4421; do
  nvmet_port_create "$svc" "$svc"
  nvmet_ana_set "$svc" 2 optimized
  nvmet_port_link "$svc" "$NQN"
done
expect_eq "$(cat "$NVMET_CFS/subsystems/$NQN/namespaces/2/ana_grpid")" 2 "configfs ana_grpid"
expect_eq "$(nvmet_ana_get 4421 2)" optimized "configfs ana_state"

log "allowed hosts"
nvmet_subsys_allow_host "$NQN" "$HOST_OK"
expect_eq "$(cat "$NVMET_CFS/subsystems/$NQN/attr_allow_any_host")" 0 "attr_allow_any_host"
if nvme connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" --hostnqn="$HOST_BAD" \
     --hostid="$HOST_BAD_ID" >/dev/null 2>&1; then
  fail "a host missing from allowed_hosts could connect"
fi
CONNECT=(--hostnqn="$HOST_OK" --hostid="$HOST_OK_ID" --reconnect-delay=1 --ctrl-loss-tmo=60)
c1=$(nvme_connect "$NQN" 4420 "${CONNECT[@]}")
c2=$(nvme_connect "$NQN" 4421 "${CONNECT[@]}")
log "paths: $c1 (4420), $c2 (4421)"
dev1=$(nvme_wait_ns 1 "$NQN")
dev2=$(nvme_wait_ns 2 "$NQN")
log "nsid 1 -> $dev1, nsid 2 -> $dev2"
expect_eq "$(blockdev --getss "$dev1")" 512 "logical block size of nsid 1"
expect_eq "$(blockdev --getss "$dev2")" 4096 "logical block size of nsid 2"
expect_eq "$(nvme_path_ana_state "$c1" 2)" optimized "ANA state of nsid 2 via $c1"
expect_eq "$(nvme_path_ana_state "$c2" 2)" optimized "ANA state of nsid 2 via $c2"

# Path state as nvme-cli reports it (State of controller $1 in list-subsys).
subsys_state() {
  nvme list-subsys -o json | jq -r --arg c "$1" '.[].Subsystems[].Paths[] | select(.Name == $c) | .State'
}
ana_is() { [[ $(nvme_path_ana_state "$1" "$2") == "$3" ]]; }
state_is() { [[ $(subsys_state "$1") == "$2" ]]; }
not_live() { [[ $(nvme_ctrl_state "$1") != live ]]; }

log "fio write + verify on $dev2 in the background"
fio_bg_start bg "$dev2"
sleep 1

log "ANA: group 2 via 4420 -> inaccessible"
nvmet_ana_set 4420 2 inaccessible
expect_eq "$(nvmet_ana_get 4420 2)" inaccessible "configfs ana_state"
wait_for 15 "$c1 to report nsid 2 inaccessible" ana_is "$c1" 2 inaccessible
expect_eq "$(nvme_path_ana_state "$c2" 2)" optimized "ANA state via the other path"
log "ANA: group 2 via 4420 -> optimized"
nvmet_ana_set 4420 2 optimized
wait_for 15 "$c1 to report nsid 2 optimized" ana_is "$c1" 2 optimized

log "path: unlink $NQN from port 4421"
nvmet_port_unlink 4421 "$NQN"
[[ ! -e $NVMET_CFS/ports/4421/subsystems/$NQN ]] || fail "port link still there"
wait_for 15 "$c2 to leave live" not_live "$c2"
log "$c2 is $(nvme_ctrl_state "$c2"), list-subsys says $(subsys_state "$c2")"
sleep 2   # a few failed reconnect attempts (reconnect-delay 1 s)
state_is "$c2" connecting || fail "$c2 is '$(subsys_state "$c2")' while its port is gone"
log "path: relink $NQN to port 4421"
nvmet_port_link 4421 "$NQN"
wait_for 20 "$c2 to reconnect" state_is "$c2" live
wait_for 15 "$c2 to report nsid 2 optimized" ana_is "$c2" 2 optimized

log "stopping fio"
fio_bg_stop bg

log "discovery referral"
nvmet_referral_add 4420 ref1 127.0.0.1 4421
entries=$(nvme_discovery_log 127.0.0.1 4420 --hostnqn="$HOST_OK" --hostid="$HOST_OK_ID")
echo "$entries"
grep -qx "discovery nqn.2014-08.org.nvmexpress.discovery 127.0.0.1 4421" <<<"$entries" ||
  fail "referral to 127.0.0.1:4421 not in the discovery log"
grep -qx "nvme $NQN 127.0.0.1 4420" <<<"$entries" || fail "$NQN not in the discovery log of an allowed host"
log "ok"
