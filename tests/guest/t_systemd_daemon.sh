#!/usr/bin/env bash
# t_systemd_daemon: nvmf-ublkd as users run it, under systemd (PID 1) and systemd-udevd in the
# guest: installed with `cmake --install`; `systemctl start` is active only after READY=1; the
# by-id links and lsblk's MODEL/SERIAL/WWN name the remote namespace; a mounted ext4 (mounted by
# its by-id link) under crc32c-verified fio survives 3x `systemctl restart`, `systemctl kill -s
# KILL` (Restart=on-failure), a frozen daemon (SIGSTOP: the watchdog kills it, systemd restarts it)
# and a replaced binary + restart, with zero fio errors, the same links and the same mount; a
# mounted device is not disconnected; disconnect removes the links. No I/O error in the journal.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
source "$NVMF_UBLK_GUEST_LIB/daemon.sh"   # fio_max_lat_ms, ms_now
[[ $(readlink /proc/1/exe) == */systemd ]] || skip "needs systemd as PID 1 (run-guest --systemd)"
require_cmd fio mkfs.ext4 mountpoint cmake udevadm systemctl journalctl lsblk
B=$NVMF_UBLK_BUILD_DIR
OUT=$NVMF_UBLK_GUEST_OUT
require_bin "$B/src/daemon/nvmf-ublkd" "$B/src/cli/nvmf-ublk"

# Installed as a user would (into the guest's throw-away root overlay).
cmake --install "$B" >"$OUT/install.log" 2>&1 || fail "cmake --install: $(tail -3 "$OUT/install.log")"
C=/usr/local/sbin/nvmf-ublk
[[ -x $C && -x /usr/local/sbin/nvmf-ublkd ]] || fail "binaries not where the units say"
systemctl daemon-reload
udevadm control --reload
on_exit sh -c "systemctl stop nvmf-ublk-shutdown nvmf-ublkd 2>/dev/null; true"

NQN=nqn.2026-01.io.nvmf-ublk:systemd
NGUID=0123456789abcdef0011223344556677
NGUID_CFS=01234567-89ab-cdef-0011-223344556677   # nvmet takes the NGUID in UUID form
UUID=5a0b3c4d-1e2f-4a5b-8c6d-7e8f90a1b2c3
nvmet_brd_load 1 256
nvmet_subsys_create "$NQN"
echo "nvmf ublk test" >"$NVMET_CFS/subsystems/$NQN/attr_model"
echo "ublk0001" >"$NVMET_CFS/subsystems/$NQN/attr_serial"
nvmet_ns_add "$NQN" 1 /dev/ram0 device_nguid=$NGUID_CFS device_uuid=$UUID
nvmet_port_create 4420 4420
nvmet_port_link 4420 "$NQN"
on_exit nvmet_teardown

main_pid() { systemctl show -p MainPID --value nvmf-ublkd; }
# wait_live DEV SECONDS: the daemon is active and lists DEV as live.
wait_live() {
  wait_for "$2" "$1 live" bash -c "systemctl is-active -q nvmf-ublkd && $C --timeout 5 list | grep -E '^$1 ' | grep -q ' live '"
}

t0=$(date +%s%N)
systemctl start nvmf-ublkd   # Type=notify: returns once the daemon sent READY=1
log "systemctl start: $((($(date +%s%N) - t0) / 1000000)) ms"
[[ $(systemctl is-active nvmf-ublkd) == active ]] || fail "nvmf-ublkd not active after start"
[[ $(systemctl show -p StatusText --value nvmf-ublkd) == serving* ]] ||
  fail "no STATUS=serving: $(systemctl show -p StatusText --value nvmf-ublkd)"
"$C" list >/dev/null || fail "control socket not serving once active"
systemctl start nvmf-ublk-shutdown

dev=$("$C" connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN" --ctrl-loss-tmo 120 --reconnect-delay 1)
log "device $dev"
udevadm settle
EUI=/dev/disk/by-id/nvmf-ublk-eui.$NGUID
ULINK=/dev/disk/by-id/nvmf-ublk-uuid.$UUID
expect_eq "$(readlink -f "$EUI")" "$dev" "$EUI"
expect_eq "$(readlink -f "$ULINK")" "$dev" "$ULINK"
read -r model serial wwn < <(lsblk -dn -o MODEL,SERIAL,WWN "$dev" | sed 's/nvmf ublk test/nvmf_ublk_test/')
expect_eq "$model" "nvmf_ublk_test" "lsblk MODEL"
expect_eq "$serial" "ublk0001" "lsblk SERIAL"
expect_eq "$wwn" "eui.$NGUID" "lsblk WWN"
log "links: $EUI, $ULINK; lsblk: $(lsblk -dn -o NAME,MODEL,SERIAL,WWN "$dev")"

mkfs.ext4 -q -F "$EUI"
M=/mnt/systemd
mkdir -p $M
mount "$EUI" $M
on_exit sh -c "umount -l $M 2>/dev/null; true"
fio_bg_start sd $M/fio.dat --size=48m --bsrange=4k-128k --iodepth=16 \
  --write_lat_log="$OUT/sd" --log_avg_msec=0 --log_unix_epoch=1
sleep 4

# window NAME T0: the I/O stall of event NAME, which began at T0 (ms): fio's longest I/O that
# completed from T0 until 3 s after the device was live again.
declare -A GAP
window() { GAP[$1]="$2 $(($(ms_now) + 3000))"; }
for round in 1 2 3; do
  pid=$(main_pid)
  t0=$(ms_now)
  systemctl restart nvmf-ublkd
  t1=$(ms_now)
  wait_live "$dev" 60
  t2=$(ms_now)
  window "restart$round" "$t0"
  [[ $(main_pid) != "$pid" ]] || fail "restart $round: same MainPID"
  log "restart $round: systemctl restart $((t1 - t0)) ms, then live after $((t2 - t1)) ms"
  sleep 3
done

# signal_and_recover SIG EVENT WHAT SECONDS: `systemctl kill -s SIG`, then waits (SECONDS) for
# systemd to run a new main process and for the device to be live again; sets T0.
signal_and_recover() {
  local pid
  pid=$(main_pid)
  T0=$(ms_now)
  systemctl kill -s "$1" nvmf-ublkd
  wait_for "$4" "$3" bash -c "p=\$(systemctl show -p MainPID --value nvmf-ublkd); [[ \$p != 0 && \$p != $pid ]]"
  wait_live "$dev" 60
  window "$2" "$T0"
}
signal_and_recover KILL kill "systemd to restart the killed daemon" 30
log "SIGKILL: restarted by systemd (Restart=on-failure) and recovered after $(($(ms_now) - T0)) ms"
sleep 3

signal_and_recover STOP watchdog "the watchdog to restart the frozen daemon" 90
journalctl -u nvmf-ublkd --no-pager >"$OUT/journal-unit.txt"   # (grep -q on a pipe: SIGPIPE)
grep -qi "watchdog timeout" "$OUT/journal-unit.txt" || fail "no watchdog timeout in the journal"
log "SIGSTOP: watchdog restart and recovery after $(($(ms_now) - T0)) ms"
sleep 3

# An upgrade: the binary is replaced (new inode, as dpkg does), then the service restarted.
install -m 0755 "$B/src/daemon/nvmf-ublkd" /usr/local/sbin/nvmf-ublkd.new
mv -f /usr/local/sbin/nvmf-ublkd.new /usr/local/sbin/nvmf-ublkd
t0=$(ms_now)
systemctl restart nvmf-ublkd
wait_live "$dev" 60
window upgrade "$t0"
[[ $(stat -L -c %i "/proc/$(main_pid)/exe") == $(stat -c %i /usr/local/sbin/nvmf-ublkd) ]] ||
  fail "the restarted daemon does not run the new binary"
log "replaced binary + restart: recovered by the new binary"
sleep 3

fio_bg_stop sd
mountpoint -q $M || fail "$M unmounted"
expect_eq "$(readlink -f "$EUI")" "$dev" "$EUI after the restarts"
expect_eq "$(readlink -f "$ULINK")" "$dev" "$ULINK after the restarts"
gaps=""
for e in restart1 restart2 restart3 kill watchdog upgrade; do
  # shellcheck disable=SC2086  # "FROM TO"
  gaps+=" $e=$(fio_max_lat_ms "$OUT/sd_lat.*.log" ${GAP[$e]})ms"
done
rm -f "$OUT"/sd_*.log
log "fio: zero errors across 3 restarts, SIGKILL, watchdog, upgrade; longest I/O per event:$gaps"
journalctl -u nvmf-ublkd --no-pager | grep -E "handed over|recovered \(" | sed 's/^.*\] //' | tail -8

rc=0
"$C" disconnect -d "$dev" 2>"$OUT/busy.err" || rc=$?
((rc == 1)) || fail "disconnect of a mounted device: exit $rc"
grep -q "is mounted on $M" "$OUT/busy.err" || fail "disconnect of a mounted device: $(cat "$OUT/busy.err")"
[[ -b $dev ]] || fail "a mounted device was removed"
umount $M
"$C" disconnect -d "$dev"
udevadm settle
[[ ! -e $EUI && ! -e $ULINK ]] || fail "by-id links left after disconnect"
[[ ! -b $dev ]] || fail "$dev left after disconnect"
journalctl -k --no-pager >"$OUT/journal-kernel.txt"
if grep -Ei "I/O error|Buffer I/O|EXT4-fs error" "$OUT/journal-kernel.txt"; then
  fail "I/O errors in the kernel log"
fi
log "ok"
