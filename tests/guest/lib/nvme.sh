# tests/guest/lib/nvme.sh — host-side (initiator) helpers for guest tests: find the kernel's nvme
# block devices and controllers through sysfs, connect with nvme-cli, read discovery logs. Sourced
# by lib/common.sh. Functions are prefixed nvme_.
#
# Why sysfs and not names: /dev/nvme0nX is NOT namespace X. Namespaces are scanned asynchronously,
# so with two namespaces nvme0n1 is NSID 1 in one boot and NSID 2 in the next; and native multipath
# adds hidden per-path nodes nvme<S>c<C>n<N> with the same nsid, which must be skipped when looking
# for the device to do I/O on.
# shellcheck shell=bash

# nvme_ns_dev NSID [SUBNQN]: prints /dev/nvmeXnY, the usable block device of namespace NSID (of
# subsystem SUBNQN when given; with native multipath this is the multipath head). Returns 1 if
# there is none (yet).
nvme_ns_dev() {
  local nsid=$1 nqn=${2:-} b n
  for b in /sys/block/nvme*; do
    n=${b##*/}
    [[ $n =~ ^nvme[0-9]+n[0-9]+$ ]] || continue   # skips nvmeXcYnZ (hidden per-path nodes)
    [[ $(<"$b/nsid") == "$nsid" ]] || continue
    # device -> the nvme-subsystem (multipath head) or the controller: both have subsysnqn
    [[ -z $nqn || $(<"$b/device/subsysnqn") == "$nqn" ]] || continue
    echo "/dev/$n"
    return 0
  done
  return 1
}

# nvme_wait_ns NSID [SUBNQN] [SECONDS=30]: like nvme_ns_dev, but waits for the namespace to appear.
nvme_wait_ns() {
  local secs=${3:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    nvme_ns_dev "$1" "${2:-}" && return 0
    sleep 0.1
  done
  echo "nvme: namespace $1 ${2:-} did not appear in ${secs}s" >&2
  return 1
}

# nvme_ctrl_for SUBNQN TRSVCID [TRADDR=127.0.0.1]: prints the controller (nvmeN) of the path to
# SUBNQN through TRADDR:TRSVCID; it exists from connect until delete, also while reconnecting.
nvme_ctrl_for() {
  local nqn=$1 svc=$2 addr=${3:-127.0.0.1} c
  for c in /sys/class/nvme/nvme*; do
    [[ -e $c/subsysnqn && $(<"$c/subsysnqn") == "$nqn" ]] || continue
    [[ ,$(<"$c/address"), == *,traddr=$addr,* && ,$(<"$c/address"), == *,trsvcid=$svc,* ]] || continue
    echo "${c##*/}"
    return 0
  done
  return 1
}

# nvme_ctrl_state CTRL: prints the controller state: live, connecting, resetting, deleting, ...
nvme_ctrl_state() {
  cat "/sys/class/nvme/$1/state"
}

# nvme_path_ana_state CTRL NSID: prints the ANA state the host believes for namespace NSID through
# controller CTRL (optimized, non-optimized, inaccessible, persistent-loss, change), from the
# per-path node's ana_state (native multipath only).
nvme_path_ana_state() {
  local p
  for p in /sys/class/nvme/"$1"/nvme*c*n*; do
    [[ -e $p/nsid && $(<"$p/nsid") == "$2" ]] || continue
    cat "$p/ana_state"
    return 0
  done
  return 1
}

# nvme_connect SUBNQN TRSVCID [NVME-CLI ARGS...]: `nvme connect` over TCP to 127.0.0.1:TRSVCID
# (override with -a ADDR in ARGS), waits until the new controller is live and prints its name.
nvme_connect() {
  local nqn=$1 svc=$2 addr=127.0.0.1 a c i
  shift 2
  for ((i = 1; i <= $#; i++)); do
    a=${!i}
    if [[ $a == -a || $a == --traddr ]]; then
      i=$((i + 1)); addr=${!i}
    fi
  done
  nvme connect -t tcp -a "$addr" -s "$svc" -n "$nqn" "$@" >/dev/null
  for ((i = 0; i < 300; i++)); do   # 30 s: generous for a loaded TCG guest
    c=$(nvme_ctrl_for "$nqn" "$svc" "$addr") && [[ $(nvme_ctrl_state "$c") == live ]] &&
      { echo "$c"; return 0; }
    sleep 0.1
  done
  echo "nvme: no live controller for $nqn at $addr:$svc" >&2
  return 1
}

# nvme_disconnect_all: deletes every nvme-fabrics controller.
nvme_disconnect_all() {
  nvme disconnect-all >/dev/null 2>&1 || true
}

# nvme_discovery_log TRADDR TRSVCID [NVME-CLI ARGS...]: prints the discovery log page of the
# discovery controller at TRADDR:TRSVCID, one record per line: "SUBTYPE SUBNQN TRADDR TRSVCID"
# with SUBTYPE one of nvme (an NVM subsystem), discovery (a referral or this discovery controller).
nvme_discovery_log() {
  local addr=$1 svc=$2
  shift 2
  nvme discover -t tcp -a "$addr" -s "$svc" -o json "$@" |
    jq -r '.records[] | [(if .subtype == "nvme subsystem" then "nvme" else "discovery" end),
                         .subnqn, .traddr, .trsvcid] | join(" ")'
}
