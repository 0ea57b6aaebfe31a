#!/usr/bin/env bash
# t_daemon_block: the product end to end against the kernel's nvmet-tcp: nvmf-ublkd + nvmf-ublk
# connect -> /dev/ublkbN with the namespace's exact size and block size (512 B and 4 KiB), ext4 with
# >= 200 MiB of files surviving unmount/remount, fio verify, discard/fstrim, flush reaching the
# target, disconnect, and clear errors (closed port, wrong NQN) that leave no device behind.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
require_cmd nvme fio mkfs.ext4 blkdiscard fstrim sha256sum
D=$NVMF_UBLK_BUILD_DIR/src/daemon/nvmf-ublkd
C=$NVMF_UBLK_BUILD_DIR/src/cli/nvmf-ublk
require_bin "$D" "$C"
[[ -c /dev/ublk-control ]] || fail "no /dev/ublk-control"

NQN=nqn.2026-01.io.nvmf-ublk:block
STATE=/run/nvmf-ublk-test
SOCK=$STATE/control.sock
log "target: ns1 = brd 320 MiB (512 B blocks), ns2 = null_blk 64 MiB (4 KiB blocks)"
nvmet_brd_load 1 320
ns2=$(nvmet_nullb_create ns4k 64 4096)
nvmet_target_up "$NQN" 4420 /dev/ram0 "$ns2"
on_exit nvmet_teardown

# Flush commands reaching the kernel target, counted with nvmet's own tracepoint.
TR=/sys/kernel/tracing
[[ -d $TR/events/nvmet ]] || mount -t tracefs nodev $TR 2>/dev/null || true
if [[ -w $TR/events/nvmet/nvmet_req_init/enable ]]; then
  echo 1 >$TR/events/nvmet/nvmet_req_init/enable
  echo >$TR/trace
  on_exit sh -c "echo 0 > $TR/events/nvmet/nvmet_req_init/enable"
fi

log "daemon"
"$D" --state-dir "$STATE" --reactors 2 --log-level info >"$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log" 2>&1 &
DPID=$!
on_exit sh -c "kill $DPID 2>/dev/null; sleep 1; kill -9 $DPID 2>/dev/null; true"
wait_for 20 "control socket" test -S "$SOCK"

log "connect errors leave nothing behind"
out=$("$C" --socket "$SOCK" connect -t tcp -a 127.0.0.1 -s 4999 -n "$NQN" 2>&1) && fail "closed port connected: $out"
echo "$out"
grep -q "Connection refused" <<<"$out" || fail "closed port: unclear error: $out"
out=$("$C" --socket "$SOCK" connect -t tcp -a 127.0.0.1 -s 4420 -n nqn.2026-01.io.nvmf-ublk:none 2>&1) && fail "wrong NQN connected: $out"
echo "$out"
grep -qi "invalid parameters\|not found" <<<"$out" || fail "wrong NQN: unclear error: $out"
ls /dev/ublkb* 2>/dev/null && fail "a failed connect left a device"

log "connect"
mapfile -t devs < <("$C" --socket "$SOCK" connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN")
echo "devices: ${devs[*]}"
expect_eq "${#devs[@]}" 2 "devices"
d1=${devs[0]} d2=${devs[1]}
wait_for 10 "$d1" test -b "$d1"
wait_for 10 "$d2" test -b "$d2"
expect_eq "$(blockdev --getsize64 "$d1")" $((320 << 20)) "size of $d1"
expect_eq "$(blockdev --getss "$d1")" 512 "logical block size of $d1"
expect_eq "$(blockdev --getsize64 "$d2")" $((64 << 20)) "size of $d2"
expect_eq "$(blockdev --getss "$d2")" 4096 "logical block size of $d2"
"$C" --socket "$SOCK" list
"$C" --socket "$SOCK" list -o json | grep -q "\"path\": \"$d1\"" || fail "list lacks $d1"

log "fio: random writes 4k-128k, iodepth 32, 30 s, crc32c verify, on the 4 KiB device"
fio --name=verify30 --filename="$d2" --rw=randwrite --bsrange=4k-128k --iodepth=32 \
  --ioengine=io_uring --direct=1 --size=64m --time_based --runtime=30 --verify=crc32c \
  --verify_backlog=64 --verify_fatal=1 --output-format=terse --terse-version=3 \
  >"$NVMF_UBLK_GUEST_OUT/fio-verify30.terse" || fail "fio verify on $d2 failed"
terse=$(grep -a '^3;' "$NVMF_UBLK_GUEST_OUT/fio-verify30.terse" | tail -n1)
expect_eq "$(cut -d';' -f5 <<<"$terse")" 0 "fio error (errno)"
log "fio: $(cut -d';' -f47 <<<"$terse") KiB written and verified"

log "ext4: 220 MiB of files, sync, unmount, remount, checksums"
mkfs.ext4 -q -F "$d1"
M=/mnt/ublk
mkdir -p $M
mount "$d1" $M
on_exit sh -c "umount $M 2>/dev/null; true"
for i in $(seq 1 11); do
  dd if=/dev/urandom of=$M/f$i bs=1M count=20 status=none
done
(cd $M && sha256sum f* >/tmp/sums)
sync
umount $M
mount "$d1" $M
(cd $M && sha256sum -c --quiet /tmp/sums) || fail "checksums differ after remount"
log "fstrim and blkdiscard"
fstrim -v $M || fail "fstrim failed"
umount $M
blkdiscard "$d2" || fail "blkdiscard failed"

if [[ -r $TR/trace ]]; then
  flushes=$(grep -c "nvme_cmd_flush" $TR/trace || true)
  dsm=$(grep -c "nvme_cmd_dsm" $TR/trace || true)
  log "target saw $flushes flush and $dsm dataset management commands"
  ((flushes > 0)) || fail "no Flush reached the target"
  ((dsm > 0)) || fail "no Dataset Management (discard) reached the target"
fi

log "disconnect"
"$C" --socket "$SOCK" disconnect -d "$d2"
wait_for 10 "$d2 to go away" bash -c "[[ ! -b $d2 ]]"
"$C" --socket "$SOCK" disconnect -n "$NQN"
wait_for 10 "$d1 to go away" bash -c "[[ ! -b $d1 ]]"
"$C" --socket "$SOCK" list
log "ok"
