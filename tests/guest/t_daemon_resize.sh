#!/usr/bin/env bash
# t_daemon_resize: a namespace that grows at the target reaches its device. nvmet file-backed
# namespace, file grown + revalidate_size: nvmet sends a Namespace Attribute Changed event, the
# daemon reads the Changed Namespace List and Identify Namespace again. Where the kernel's ublk has
# UPDATE_SIZE (6.16+) the device grows (blockdev --getsize64, list) and the new blocks are
# writable; on older kernels the daemon logs why it cannot, and the device keeps serving.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
source "$NVMF_UBLK_GUEST_LIB/daemon.sh"
require_cmd blockdev dd jq
require_bin "$D" "$C"

NQN=nqn.2026-01.io.nvmf-ublk:resize
STATE=/run/nvmf-ublk-resize
SOCK=$STATE/control.sock
img=$(nvmet_file_create /run/nvmf-ublk-resize.img 64)
nvmet_target_up "$NQN" 4420 "$img"
on_exit nvmet_teardown
daemon_start
on_exit sh -c "pkill -KILL -x nvmf-ublkd; true"

dev=$("$C" --socket "$SOCK" connect -t tcp -a 127.0.0.1 -s 4420 -n "$NQN")
wait_for 10 "$dev" test -b "$dev"
expect_eq "$(blockdev --getsize64 "$dev")" $((64 << 20)) "size of $dev"
log "growing the namespace to 96 MiB"
truncate -s 96M "$img"
echo 1 >"$NVMET_CFS/subsystems/$NQN/namespaces/1/revalidate_size"
LOG=$NVMF_UBLK_GUEST_OUT/nvmf-ublkd.log
wait_for 20 "the daemon to see the new size" grep -q 'namespace 1 now has [0-9]* blocks (was ' "$LOG"
if grep -q 'flags .*UPDATE_SIZE' "$LOG"; then
  wait_for 20 "$dev to grow" bash -c "[[ \$(blockdev --getsize64 $dev) == $((96 << 20)) ]]"
  expect_eq "$("$C" --socket "$SOCK" list -o json | jq '.devices[0].size_bytes')" $((96 << 20)) \
    "size in list"
  head -c 1M /dev/urandom >"$NVMF_UBLK_GUEST_OUT/tail.bin"
  dd if="$NVMF_UBLK_GUEST_OUT/tail.bin" of="$dev" bs=1M seek=95 oflag=direct status=none
  dd if="$dev" of="$NVMF_UBLK_GUEST_OUT/tail.back" bs=1M skip=95 count=1 iflag=direct status=none
  cmp "$NVMF_UBLK_GUEST_OUT/tail.bin" "$NVMF_UBLK_GUEST_OUT/tail.back" ||
    fail "the grown part does not read back"
  log "the device grew to 96 MiB (UPDATE_SIZE), and its new last MiB reads back"
else
  wait_for 20 "the daemon to say why it cannot resize" \
    grep -q "cannot change a device's size" "$LOG"
  expect_eq "$(blockdev --getsize64 "$dev")" $((64 << 20)) "size of $dev (no UPDATE_SIZE)"
  dd if="$dev" of=/dev/null bs=1M count=4 iflag=direct status=none || fail "$dev stopped serving"
  log "no UPDATE_SIZE in this kernel: the daemon says so, the device keeps serving at 64 MiB"
fi
"$C" --socket "$SOCK" disconnect -n "$NQN"
log "ok"
