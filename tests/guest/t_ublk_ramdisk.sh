#!/usr/bin/env bash
# t_ublk_ramdisk: the ublk layer (src/ublk) serving real block devices: ublk_ramdisk (RAM backend,
# 2 queues on 2 reactors) with 512- and 4096-byte blocks appears with the exact size and block
# size, passes fio write+verify (sync and async backend), carries an ext4 filesystem across a
# remount, discards reach the backend and read back as zeroes, flushes reach the backend, and
# stopping the server removes the device.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
bin=$NVMF_UBLK_BUILD_DIR/src/ublk/ublk_ramdisk
require_bin "$bin"
require_cmd fio mkfs.ext4 blkdiscard blockdev fstrim sha256sum
[[ -c /dev/ublk-control ]] || skip "no /dev/ublk-control (ublk_drv not loaded)"
out=$NVMF_UBLK_GUEST_OUT

umount_quiet() { ! mountpoint -q "$1" || umount -l "$1"; }
# stop_disk NAME PID DEV: SIGTERM, the server must exit 0 and the device must be gone; sets STATS.
stop_disk() {
  local name=$1 pid=$2 dev=$3 rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  ((rc == 0)) || fail "$name exited $rc: $(tail -n 3 "$out/$name.log")"
  [[ ! -e $dev && ! -e /sys/block/${dev#/dev/} ]] || fail "$dev still exists after stop"
  [[ ! -e /dev/ublkc${dev#/dev/ublkb} ]] || fail "char device of $dev still exists after stop"
  STATS=$(grep '^stats: ' "$out/$name.log" | tail -n1)
  log "$name stopped: $STATS"
}
# counter NAME: one counter from STATS.
counter() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" ${STATS#stats: }"; }

# --- 512-byte blocks, inline backend: geometry, fio, ext4, discard, flush ----------------------
size=$((96 * 1024 * 1024 + 3 * 4096))
ublk_ramdisk_start d512 30 --size "$size" --lbs 512 --pbs 4096 --queues 2 --depth 64
dev=$DEV pid=$PID
expect_eq "$(blockdev --getsize64 "$dev")" "$size" "size of $dev"
expect_eq "$(blockdev --getss "$dev")" 512 "logical block size of $dev"
expect_eq "$(blockdev --getpbsz "$dev")" 4096 "physical block size of $dev"
expect_eq "$(cat /sys/block/${dev#/dev/}/queue/write_cache)" "write back" "write cache of $dev"

log "fio randwrite + crc32c verify, 32 MiB"
fio_verify "$dev" --size=32m
log "fio done"

mnt=$(mktemp -d)
mkfs.ext4 -q -F -E nodiscard "$dev"
mount -o discard "$dev" "$mnt"
on_exit umount_quiet "$mnt"
head -c $((8 << 20)) /dev/urandom >"$mnt/file"
sum=$(sha256sum <"$mnt/file")
sync
umount "$mnt"
mount "$dev" "$mnt"
expect_eq "$(sha256sum <"$mnt/file")" "$sum" "file checksum after remount"
rm "$mnt/file"
fstrim "$mnt"   # ext4 sends discards for the freed blocks
umount "$mnt"
log "ext4: mkfs, write, remount, read back, fstrim ok"

# Write a pattern, discard it, read zeroes back (O_DIRECT: straight from the backend).
dd if=/dev/urandom of="$dev" bs=1M count=4 seek=1 oflag=direct status=none
blkdiscard -f -o $((1 << 20)) -l $((4 << 20)) "$dev"
cmp -n $((4 << 20)) <(dd if="$dev" bs=1M count=4 skip=1 iflag=direct status=none) /dev/zero ||
  fail "discarded range does not read back as zeroes"
blkdiscard -f -z -o $((1 << 20)) -l $((1 << 20)) "$dev"   # BLKZEROOUT: write zeroes
log "blkdiscard ok"

stop_disk d512 "$pid" "$dev"
(($(counter flushes) > 0)) || fail "no flush reached the backend ($STATS)"
(($(counter discards) > 0)) || fail "no discard reached the backend ($STATS)"
(($(counter write_zeroes) > 0)) || fail "no write-zeroes reached the backend ($STATS)"
(($(counter errors) == 0)) || fail "backend errors ($STATS)"
(($(counter queue_starts) == 2 && $(counter queue_stops) == 2)) || fail "queue life cycle ($STATS)"

# --- 4096-byte blocks, asynchronous backend ----------------------------------------------------
size=$((64 * 1024 * 1024))
ublk_ramdisk_start d4k 30 --size "$size" --lbs 4096 --queues 2 --depth 32 --async
dev=$DEV pid=$PID
expect_eq "$(blockdev --getsize64 "$dev")" "$size" "size of $dev"
expect_eq "$(blockdev --getss "$dev")" 4096 "logical block size of $dev"
log "fio randwrite + verify (4 KiB blocks, async backend), then sequential 64 KiB"
fio_verify "$dev" --size=16m --bs=4k --iodepth=32
fio_verify "$dev" --size=16m --offset=32m --bs=64k --iodepth=4 --rw=write
stop_disk d4k "$pid" "$dev"
(($(counter errors) == 0)) || fail "backend errors ($STATS)"
log "done"
