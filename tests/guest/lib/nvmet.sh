# tests/guest/lib/nvmet.sh — fixtures for the Linux kernel's NVMe-oF target (nvmet + nvmet-tcp),
# configured through configfs inside the guest. Sourced by lib/common.sh; every guest test may use
# it. Functions are prefixed nvmet_ and return non-zero (set -e ends the test) on failure.
#
# Model (NVMe-oF, as nvmet's configfs tree at /sys/kernel/config/nvmet shows it):
#   subsystems/NQN/namespaces/NSID   a block device or file exported as namespace NSID
#   ports/PORTID                     a TCP listener (traddr:trsvcid); a subsystem is reachable
#                                    through a port while ports/PORTID/subsystems/NQN links to it
#   ports/PORTID/ana_groups/G        the ANA state of group G *as seen through that port*; a
#                                    namespace belongs to group subsystems/NQN/namespaces/K/ana_grpid
#   hosts/HOSTNQN + allowed_hosts/   which hosts may connect when attr_allow_any_host=0
# Convention used by nvmet_target_up: the port id is the TCP service id (ports/4420 listens on
# 4420), so tests name paths by port number.
#
# Typical use (in a t_*.sh after sourcing common.sh):
#   nvmet_brd_load 2 64                           # /dev/ram0, /dev/ram1, 64 MiB each, 512 B blocks
#   dev4k=$(nvmet_nullb_create ns4k 64 4096)      # memory-backed null_blk with 4 KiB blocks
#   nvmet_target_up "$NQN" "4420 4421" /dev/ram0 "$dev4k"   # nsid 1, 2 on two ports
#   on_exit nvmet_teardown
#   nvmet_ana_set 4421 1 inaccessible             # path via 4421 becomes inaccessible
#   nvmet_port_unlink 4420 "$NQN"                 # path via 4420 goes away (controllers dropped)
#   nvmet_port_link 4420 "$NQN"                   # ... and comes back
# shellcheck shell=bash

NVMET_CFS=/sys/kernel/config/nvmet
NULLB_CFS=/sys/kernel/config/nullb

# _nvmet_write FILE VALUE: configfs attribute write with a readable error (configfs answers EINVAL
# or EBUSY without saying which attribute).
_nvmet_write() {
  printf '%s' "$2" >"$1" 2>/dev/null || { echo "nvmet: cannot write '$2' to $1" >&2; return 1; }
}

# nvmet_modules: loads nvmet and nvmet-tcp and mounts configfs (both are normally done at boot).
nvmet_modules() {
  [[ -d $NVMET_CFS ]] && return 0
  modprobe -a nvmet nvmet-tcp
  mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
}

# ---------------------------------------------------------------------------------------------------
# Backing devices. Module parameters apply only when a module loads, so brd is loaded once with
# every device a test needs; null_blk devices are made one by one through its configfs instead.
# ---------------------------------------------------------------------------------------------------

# nvmet_brd_load COUNT SIZE_MIB: /dev/ram0 .. /dev/ram<COUNT-1>, SIZE_MIB each, RAM-backed (data
# survives, so fio verify works), 512 B logical blocks. Reloads brd when it is loaded with other
# parameters (fails if its devices are in use).
nvmet_brd_load() {
  local count=$1 kib=$(($2 * 1024))
  if [[ -d /sys/module/brd ]]; then
    if [[ $(</sys/module/brd/parameters/rd_nr) -ge $count &&
          $(</sys/module/brd/parameters/rd_size) == "$kib" ]]; then
      return 0
    fi
    modprobe -r brd || { echo "nvmet: brd is loaded with other parameters and in use" >&2; return 1; }
  fi
  modprobe brd rd_nr="$count" rd_size="$kib"
  [[ -b /dev/ram$((count - 1)) ]]
}

# nvmet_nullb_create NAME SIZE_MIB [BLOCK_SIZE=512] [ATTR=VALUE...]: a memory-backed null_blk device
# (contents are kept, so verify works; a plain null_blk returns zeros) with the given logical block
# size (512 or 4096), made through null_blk's configfs. Extra ATTRs are written before power-on
# (e.g. discard=1, mbps=100, irqmode=2 completion_nsec=1000000 for slow I/O). Prints the device.
nvmet_nullb_create() {
  local name=$1 size=$2 bs=${3:-512} d a
  shift $(($# < 3 ? $# : 3))
  [[ -d /sys/module/null_blk ]] || modprobe null_blk nr_devices=0
  d=$NULLB_CFS/$name
  mkdir "$d"
  _nvmet_write "$d/size" "$size"
  _nvmet_write "$d/blocksize" "$bs"
  _nvmet_write "$d/memory_backed" 1
  for a in "$@"; do _nvmet_write "$d/${a%%=*}" "${a#*=}"; done
  _nvmet_write "$d/power" 1
  # 6.12 names the disk after the configfs item; older kernels call it nullb<index>.
  if [[ -b /dev/$name ]]; then echo "/dev/$name"; else echo "/dev/nullb$(<"$d/index")"; fi
}

# nvmet_nullb_remove NAME: powers off and deletes a device made by nvmet_nullb_create.
nvmet_nullb_remove() {
  [[ -d $NULLB_CFS/$1 ]] || return 0
  _nvmet_write "$NULLB_CFS/$1/power" 0
  rmdir "$NULLB_CFS/$1"
}

# nvmet_file_create PATH SIZE_MIB: a sparse file for a file-backed namespace (nvmet_ns_add turns on
# buffered_io for regular files, since tmpfs has no O_DIRECT). Prints PATH.
nvmet_file_create() {
  mkdir -p "$(dirname "$1")"
  truncate -s "$2M" "$1"
  echo "$1"
}

# ---------------------------------------------------------------------------------------------------
# Subsystems, namespaces, hosts
# ---------------------------------------------------------------------------------------------------

# nvmet_subsys_create NQN [ATTR=VALUE...]: a subsystem that any host may connect to, unless
# nvmet_subsys_allow_host restricts it. ATTRs are subsystems/NQN/attr_* files, e.g.
# attr_serial=1234 attr_model=foo attr_qid_max=4. Idempotent.
nvmet_subsys_create() {
  local nqn=$1 s a
  shift
  nvmet_modules
  s=$NVMET_CFS/subsystems/$nqn
  mkdir -p "$s"
  [[ -n $(ls "$s/allowed_hosts") ]] || _nvmet_write "$s/attr_allow_any_host" 1
  for a in "$@"; do _nvmet_write "$s/${a%%=*}" "${a#*=}"; done
}

# nvmet_subsys_allow_host NQN HOSTNQN: from now on only the listed hosts may connect to NQN
# (attr_allow_any_host=0, hosts/HOSTNQN linked into allowed_hosts). Existing controllers of other
# hosts are not dropped by this; new connects from them are refused.
nvmet_subsys_allow_host() {
  local s=$NVMET_CFS/subsystems/$1
  mkdir -p "$NVMET_CFS/hosts/$2"
  _nvmet_write "$s/attr_allow_any_host" 0   # the kernel refuses host links while it is 1
  [[ -L $s/allowed_hosts/$2 ]] || ln -s "$NVMET_CFS/hosts/$2" "$s/allowed_hosts/$2"
}

# nvmet_subsys_disallow_host NQN HOSTNQN: removes HOSTNQN from NQN's allowed hosts.
nvmet_subsys_disallow_host() {
  rm -f "$NVMET_CFS/subsystems/$1/allowed_hosts/$2"
}

# nvmet_subsys_allow_any_host NQN: drops every allowed-host link; any host may connect again.
nvmet_subsys_allow_any_host() {
  local s=$NVMET_CFS/subsystems/$1
  find "$s/allowed_hosts" -mindepth 1 -maxdepth 1 -type l -delete
  _nvmet_write "$s/attr_allow_any_host" 1
}

# nvmet_ns_add NQN NSID DEVICE [ATTR=VALUE...]: exports DEVICE (block device or regular file) as
# namespace NSID and enables it. ATTRs are namespaces/NSID files written before enabling, e.g.
# ana_grpid=2, device_nguid=<uuid form>, device_uuid=<uuid>, buffered_io=1.
nvmet_ns_add() {
  local nqn=$1 nsid=$2 dev=$3 n a
  shift 3
  n=$NVMET_CFS/subsystems/$nqn/namespaces/$nsid
  mkdir "$n"
  _nvmet_write "$n/device_path" "$dev"
  [[ -f $dev ]] && _nvmet_write "$n/buffered_io" 1
  for a in "$@"; do _nvmet_write "$n/${a%%=*}" "${a#*=}"; done
  _nvmet_write "$n/enable" 1
}

# nvmet_ns_enable NQN NSID 0|1: disables (hosts see the namespace go away: an NS-attribute-changed
# event) or re-enables a namespace. device_path/nguid/uuid can only change while it is disabled.
nvmet_ns_enable() {
  _nvmet_write "$NVMET_CFS/subsystems/$1/namespaces/$2/enable" "$3"
}

# nvmet_ns_set_ana_group NQN NSID GRPID: moves a live namespace to ANA group GRPID (each port must
# have that group: nvmet_ana_set creates it).
nvmet_ns_set_ana_group() {
  _nvmet_write "$NVMET_CFS/subsystems/$1/namespaces/$2/ana_grpid" "$3"
}

# nvmet_ns_remove NQN NSID: disables and deletes a namespace.
nvmet_ns_remove() {
  local n=$NVMET_CFS/subsystems/$1/namespaces/$2
  [[ -d $n ]] || return 0
  _nvmet_write "$n/enable" 0
  rmdir "$n"
}

# ---------------------------------------------------------------------------------------------------
# Ports (paths) and ANA
# ---------------------------------------------------------------------------------------------------

# nvmet_port_create PORTID TRSVCID [TRADDR=0.0.0.0] [ATTR=VALUE...]: a TCP port. 0.0.0.0 (all
# addresses) is reachable as 127.0.0.1 inside the guest and, through QEMU hostfwd, from the host
# (slirp delivers to 10.0.2.15). ATTRs: e.g. param_inline_data_size=16384, addr_tsas... The port
# only listens once a subsystem is linked to it. Idempotent when the port exists.
nvmet_port_create() {
  local id=$1 svc=$2 addr=${3:-0.0.0.0} p a fam=ipv4
  shift $(($# < 3 ? $# : 3))
  nvmet_modules
  p=$NVMET_CFS/ports/$id
  [[ -d $p ]] && return 0
  [[ $addr == *:* ]] && fam=ipv6
  mkdir "$p"
  _nvmet_write "$p/addr_trtype" tcp
  _nvmet_write "$p/addr_adrfam" "$fam"
  _nvmet_write "$p/addr_traddr" "$addr"
  _nvmet_write "$p/addr_trsvcid" "$svc"
  for a in "$@"; do _nvmet_write "$p/${a%%=*}" "${a#*=}"; done
}

# nvmet_port_link PORTID NQN: exposes NQN through the port (restores a removed path). Hosts with a
# reconnecting controller for this path get back in on their next reconnect attempt.
nvmet_port_link() {
  local l=$NVMET_CFS/ports/$1/subsystems/$2
  [[ -L $l ]] || ln -s "$NVMET_CFS/subsystems/$2" "$l"
}

# nvmet_port_unlink PORTID NQN: removes the path: the kernel drops every controller of NQN on this
# port at once (hosts see the connection reset and start reconnecting) and refuses new connects
# to NQN there; the last unlink also closes the listener.
nvmet_port_unlink() {
  rm -f "$NVMET_CFS/ports/$1/subsystems/$2"
}

# nvmet_port_remove PORTID: unlinks every subsystem, drops referrals and ANA groups, deletes it.
nvmet_port_remove() {
  local p=$NVMET_CFS/ports/$1 x
  [[ -d $p ]] || return 0
  find "$p/subsystems" -mindepth 1 -maxdepth 1 -type l -delete
  for x in "$p"/referrals/*/; do
    [[ -d $x ]] || continue
    _nvmet_write "$x/enable" 0 || true
    rmdir "$x"
  done
  for x in "$p"/ana_groups/*/; do
    [[ -d $x && ${x%/} != */ana_groups/1 ]] && rmdir "$x"   # group 1 is built in
  done
  rmdir "$p"
}

# nvmet_ana_set PORTID GRPID STATE: the ANA state of group GRPID through port PORTID, one of
# optimized | non-optimized | inaccessible | persistent-loss | change. Creates the group on the
# port if needed (group 1 always exists, optimized). Connected hosts get an ANA-change AEN and
# re-read the ANA log page, so it works while I/O runs.
nvmet_ana_set() {
  local g=$NVMET_CFS/ports/$1/ana_groups/$2
  [[ -d $g ]] || mkdir "$g"
  _nvmet_write "$g/ana_state" "$3"
}

# nvmet_ana_get PORTID GRPID: prints the state as configured (read back from configfs).
nvmet_ana_get() {
  cat "$NVMET_CFS/ports/$1/ana_groups/$2/ana_state"
}

# ---------------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------------
# Every nvmet port also serves the discovery subsystem (nqn.2014-08.org.nvmexpress.discovery); its
# log lists the subsystems linked to that port (with traddr = the local address of the discovery
# connection when the port listens on 0.0.0.0), then the port's referrals. A subsystem restricted to
# allowed hosts is listed only to those hosts: discover with their --hostnqn/--hostid.

# nvmet_referral_add PORTID NAME TRADDR TRSVCID [REF_PORTID]: a referral entry in PORTID's
# discovery log pointing at another discovery controller.
nvmet_referral_add() {
  local r=$NVMET_CFS/ports/$1/referrals/$2 fam=ipv4
  [[ $3 == *:* ]] && fam=ipv6
  mkdir "$r"
  _nvmet_write "$r/addr_trtype" tcp
  _nvmet_write "$r/addr_adrfam" "$fam"
  _nvmet_write "$r/addr_traddr" "$3"
  _nvmet_write "$r/addr_trsvcid" "$4"
  [[ -z ${5:-} ]] || _nvmet_write "$r/addr_portid" "$5"
  _nvmet_write "$r/enable" 1
}

# nvmet_referral_remove PORTID NAME
nvmet_referral_remove() {
  local r=$NVMET_CFS/ports/$1/referrals/$2
  [[ -d $r ]] || return 0
  _nvmet_write "$r/enable" 0
  rmdir "$r"
}

# nvmet_discovery_nqn NQN: renames the discovery subsystem (the default is the well-known
# nqn.2014-08.org.nvmexpress.discovery, which stays accepted too).
nvmet_discovery_nqn() {
  _nvmet_write "$NVMET_CFS/discovery_nqn" "$1"
}

# ---------------------------------------------------------------------------------------------------
# Whole targets
# ---------------------------------------------------------------------------------------------------

# nvmet_target_up NQN "TRSVCID..." DEVICE...: subsystem NQN (any host) with namespaces 1..N =
# DEVICEs, reachable on every TRSVCID at 0.0.0.0 through port id = TRSVCID. Ports that already
# exist are reused, so several subsystems can share one port.
nvmet_target_up() {
  local nqn=$1 svcs=$2 nsid=0 dev svc
  shift 2
  nvmet_subsys_create "$nqn"
  for dev in "$@"; do
    nsid=$((nsid + 1))
    nvmet_ns_add "$nqn" "$nsid" "$dev"
  done
  for svc in $svcs; do
    nvmet_port_create "$svc" "$svc"
    nvmet_port_link "$svc" "$nqn"
  done
}

# nvmet_teardown: removes every port, subsystem, namespace, host and null_blk configfs device
# (everything these fixtures can make). Hosts still connected see their controllers go away.
# Safe to call when nothing is configured.
nvmet_teardown() {
  local x n
  if [[ -d $NVMET_CFS ]]; then
    for x in "$NVMET_CFS"/ports/*/; do [[ -d $x ]] && nvmet_port_remove "$(basename "$x")"; done
    for x in "$NVMET_CFS"/subsystems/*/; do
      [[ -d $x ]] || continue
      find "$x/allowed_hosts" -mindepth 1 -maxdepth 1 -type l -delete
      for n in "$x"/namespaces/*/; do
        [[ -d $n ]] || continue
        _nvmet_write "$n/enable" 0 || true
        rmdir "$n"
      done
      rmdir "$x"
    done
    for x in "$NVMET_CFS"/hosts/*/; do [[ -d $x ]] && rmdir "$x"; done
  fi
  if [[ -d $NULLB_CFS ]]; then
    for x in "$NULLB_CFS"/*/; do [[ -d $x ]] && nvmet_nullb_remove "$(basename "$x")"; done
  fi
  return 0
}
