#!/usr/bin/env bash
# t_engine_nvmet: the NVMe/TCP engine (io_uring reactors, controller bring-up, I/O queues) against
# the Linux kernel's own target: discovery log, connect, 64 MiB write + read-back, digests on,
# NVMe errors, bad NQN and refused port.
source "${NVMF_UBLK_GUEST_LIB:-$(dirname "${BASH_SOURCE[0]}")/lib}/common.sh"
bin=$NVMF_UBLK_BUILD_DIR/src/io/engine_nvmet_test
require_bin "$bin"

NQN=nqn.2026-01.io.nvmf-ublk:engine
nvmet_brd_load 1 64
nvmet_target_up "$NQN" 4420 /dev/ram0
on_exit nvmet_teardown

NVMF_TEST_TRADDR=127.0.0.1 NVMF_TEST_PORT=4420 NVMF_TEST_NQN=$NQN NVMF_TEST_NS_BYTES=$((64 << 20)) \
  "$bin" --gtest_brief=1
