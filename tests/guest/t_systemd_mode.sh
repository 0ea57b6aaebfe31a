#!/usr/bin/env bash
# t_systemd_mode: self-test of `run-guest --systemd`: systemd is PID 1 and the system is up as users
# have it: running (not degraded), udevd coldplugged and creating links (a brd disk becomes a
# device unit; an NVMe/TCP namespace gets its /dev/disk/by-id link), transient units, the journal
# (with this test's own unit messages), the run-guest modules and the nvmet configfs tree.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
require_cmd nvme

exe=$(readlink /proc/1/exe)
log "PID 1: $exe"
[[ $exe == */systemd ]] || fail "PID 1 is $exe, not systemd (run-guest --systemd)"
expect_eq "$(systemctl show -P Id run-guest-test.service)" run-guest-test.service "unit name"
grep -q '/run-guest-test.service$' /proc/self/cgroup || fail "not in run-guest-test.service: $(cat /proc/self/cgroup)"

state=$(systemctl is-system-running --wait || true)
log "is-system-running: $state; failed units:"
systemctl --failed --no-pager --no-legend --plain || true
[[ $state == running || $state == degraded ]] || fail "system state '$state'"
[[ $state == running ]] || log "WARNING: degraded (see the failed units above)"
log "boot: $(systemd-analyze time 2>/dev/null | head -n1 || true)"

for u in systemd-journald.service systemd-udevd.service sys-kernel-config.mount; do
  expect_eq "$(systemctl is-active "$u" || true)" active "$u"
done
log "udevadm settle"
udevadm settle --timeout=30 || fail "udevadm settle failed"

log "modules and configfs"
for m in ublk_drv nvmet nvmet_tcp nvme_tcp; do
  grep -q "^$m " /proc/modules || fail "module $m not loaded"
done
[[ -d /sys/kernel/config/nvmet/subsystems ]] || fail "no nvmet configfs tree"
[[ -c /dev/ublk-control ]] || fail "no /dev/ublk-control"
ip -4 addr show dev eth0 | grep -q 10.0.2.15 || fail "eth0 has no 10.0.2.15"
ip -4 addr show dev lo | grep -q 127.0.0.1 || fail "lo is down"

log "udev: brd disk -> dev-ram0.device"
nvmet_brd_load 1 64
udevadm settle --timeout=30
info=$(udevadm info /dev/ram0)
if ! grep -q '^E: DEVNAME=/dev/ram0$' <<<"$info" || ! grep -q '^E: TAGS=.*:systemd:' <<<"$info"; then
  fail "udev did not process /dev/ram0: $info"
fi
wait_for 10 "dev-ram0.device" systemctl is-active dev-ram0.device

log "udev: NVMe/TCP namespace -> /dev/disk/by-id"
NQN=nqn.2026-01.io.nvmf-ublk:guest-systemd-mode
nvmet_target_up "$NQN" 4420 /dev/ram0
on_exit nvmet_teardown
nvme_connect "$NQN" 4420 >/dev/null
on_exit nvme_disconnect_all
dev=$(nvme_wait_ns 1 "$NQN")
udevadm settle --timeout=30
links=$(udevadm info -q symlink "$dev")
log "$dev: $links"
found=
for l in /dev/disk/by-id/nvme-*; do
  [[ -L $l && $(readlink -f "$l") == "$dev" ]] && found=$l
done
[[ -n $found ]] || fail "no /dev/disk/by-id link to $dev ($(ls /dev/disk/by-id 2>&1))"

log "transient unit: systemd-run --wait"
systemd-run --wait --quiet --unit=run-guest-selftest true || fail "systemd-run --wait true failed"
# shellcheck disable=SC2016  # (expanded by the transient unit's sh)
out=$(systemd-run --wait --pipe --quiet sh -c 'echo pid1=$(readlink /proc/1/exe)')
expect_eq "$out" "pid1=$exe" "systemd-run --pipe output"

log "journal: this unit's messages"
echo "t_systemd_mode says hello $$" | systemd-cat -t t_systemd_mode
# By identifier only: journald attributes a line to its unit from the sender's cgroup, which it
# may miss when systemd-cat has exited before the line is read (the line then has no unit); the
# unit's own journal is checked below through systemd's lines.
wait_for 20 "the journal to show our message" \
  bash -c "journalctl -b -t t_systemd_mode --no-pager | grep >/dev/null 'hello $$'"
journalctl -b -u run-guest-test.service --no-pager | grep >/dev/null 'Started run-guest-test.service' ||
  fail "journalctl -u run-guest-test.service lacks systemd's 'Started' line"
journalctl -b -u run-guest-selftest.service --no-pager | grep >/dev/null 'run-guest-selftest.service' ||
  fail "no journal for the transient unit"
log "ok"
