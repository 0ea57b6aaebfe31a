#!/usr/bin/env bash
# run-guest boots again when the kernel panics while booting (before guest-init loaded the modules),
# and gives up after NVMF_UBLK_GUEST_BOOT_ATTEMPTS with rc 125 and the console tail. The panic is
# made on purpose: rdinit= names no file, so the kernel finds no root to mount.
# A real boot that reaches the test is never retried: every other guest test shows that.
set -euo pipefail
RUN_GUEST=${1:?usage: runner_boot_retry_test.sh RUN_GUEST}
err=$(mktemp)
trap 'rm -f "$err"' EXIT
rc=0
NVMF_UBLK_GUEST_APPEND="rdinit=/nvmf-ublk-no-such-init" NVMF_UBLK_GUEST_BOOT_ATTEMPTS=2 \
  NVMF_UBLK_GUEST_TIMEOUT=120 "$RUN_GUEST" -- true 2>"$err" || rc=$?
cat "$err"
[[ $rc == 77 ]] && exit 77
fail() { echo "FAIL: $*"; exit 1; }
[[ $rc == 125 ]] || fail "run-guest returned $rc, want 125"
grep -q 'panicked while booting, before the test began (attempt 1 of 2); booting again' "$err" ||
  fail "no retry after the first boot's panic"
grep -q 'attempt 2 of 2' "$err" && fail "a third boot was tried"
grep -q 'the guest ended without a status' "$err" || fail "the last boot's failure was not reported"
grep -q 'Kernel panic' "$err" || fail "the console tail is missing"
echo "PASS: one boot again after a boot-time panic, then rc 125 with the console"
