# Guest (QEMU, real kernel) tests for ctest. Included by tests/guest/CMakeLists.txt; a CMakeLists
# elsewhere that registers guest tests includes it too (include guard):
#   include(${PROJECT_SOURCE_DIR}/tests/guest/GuestTest.cmake)
#
# Every guest test: label `guest`; needs fixture `nvmf_ublk_guest` (the test guest_prepare fetches
# the kernel and builds the initramfs once, so that time is not charged to the first test); holds
# RESOURCE_LOCK nvmf_ublk_guest (one VM at a time: TCG wants both cores, and tests with timeouts
# must not compete); SKIP_RETURN_CODE 77 (no QEMU / no kernel package on this machine: reported
# as skipped, with the runner's one-line reason in the test log, never as a silent pass).
include_guard(GLOBAL)

set(NVMF_UBLK_GUEST_DIR ${CMAKE_CURRENT_LIST_DIR})
set(NVMF_UBLK_RUN_GUEST ${CMAKE_CURRENT_LIST_DIR}/run-guest)

# nvmf_ublk_guest_test(NAME <name>
#                      SCRIPT <t_x.sh>... | COMMAND <cmd> [<arg>...]
#                      [TIMEOUT <s>] [ENV <VAR=VALUE>...] [HOSTFWD <hostport:guestport>...]
#                      [MEM <size>] [CPUS <n>] [LABELS <label>...] [SYSTEMD]
#                      [KERNEL_SUITE <suite>] [HOST_WRAPPER <cmd> [<arg>...]]
#                      [BOOT_SETUP <script>])
# One ctest entry = one guest boot (~5-7 s).
#   SCRIPT   guest test scripts (relative to the calling CMakeLists' folder), run in that one boot by
#            tests/guest/suite: per-test PASS/FAIL/SKIP lines, a reset between scripts.
#   COMMAND  instead: a command run directly in the guest, e.g. a gtest binary that needs the real
#            kernel: COMMAND $<TARGET_FILE:ublk_ctrl_guest_test> --gtest_brief=1.
#   TIMEOUT  ctest's limit (default 600); the guest itself is stopped a little earlier, so a hang
#            ends with the runner's rc 124 and the kernel console tail in the log.
#   KERNEL_SUITE  boot the newest kernel of another Debian suite (e.g. trixie-backports, for
#            features 6.12 lacks), fetched into the same cache on first use (label `kernel-<suite>`).
#   HOST_WRAPPER  a command (and its arguments) that runs on the host around the guest: it gets the
#            runner's whole command line after its own arguments, e.g. to start peers on the host
#            first (the guest reaches the host as 10.0.2.2) and check them after.
#   SYSTEMD  boot systemd as PID 1 (run-guest --systemd; label `systemd` added): the test runs as
#            run-guest-test.service and may end with guest_poweroff; the journal is left in
#            <out>/journal.log and <out>/shutdown-journal.log (tests/guest/README.md).
#   BOOT_SETUP  (with SYSTEMD) a script run before systemd starts (run-guest --boot-setup), to set
#            up what the units find at boot.
# In the guest: cwd = this build folder; NVMF_UBLK_BUILD_DIR / NVMF_UBLK_SOURCE_DIR = the build and
# source trees (same paths as here); NVMF_UBLK_GUEST_OUT = <build>/tests/guest/out/<name>, shared
# read-write, where the suite leaves <test>.log and tests leave artefacts.
function(nvmf_ublk_guest_test)
  cmake_parse_arguments(ARG "SYSTEMD" "NAME;TIMEOUT;MEM;CPUS;KERNEL_SUITE;BOOT_SETUP"
                        "SCRIPT;COMMAND;ENV;HOSTFWD;LABELS;HOST_WRAPPER" ${ARGN})
  if(NOT ARG_NAME)
    message(FATAL_ERROR "nvmf_ublk_guest_test: NAME is required")
  endif()
  if((ARG_SCRIPT AND ARG_COMMAND) OR (NOT ARG_SCRIPT AND NOT ARG_COMMAND))
    message(FATAL_ERROR "nvmf_ublk_guest_test(${ARG_NAME}): give either SCRIPT or COMMAND")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  if(NOT ARG_CPUS)
    set(ARG_CPUS 2)
  endif()
  # Leave ctest's own kill for a runner that is stuck itself.
  if(ARG_TIMEOUT GREATER 60)
    math(EXPR guest_timeout "${ARG_TIMEOUT} - 15")
  else()
    math(EXPR guest_timeout "${ARG_TIMEOUT} - 5")
  endif()

  set(out ${PROJECT_BINARY_DIR}/tests/guest/out/${ARG_NAME})
  set(args --timeout ${guest_timeout} --cpus ${ARG_CPUS} --rw ${out}
      --env NVMF_UBLK_BUILD_DIR=${PROJECT_BINARY_DIR}
      --env NVMF_UBLK_SOURCE_DIR=${PROJECT_SOURCE_DIR}
      --env NVMF_UBLK_GUEST_OUT=${out})
  if(ARG_MEM)
    list(APPEND args --mem ${ARG_MEM})
  endif()
  if(ARG_SYSTEMD)
    list(APPEND args --systemd)
    list(APPEND ARG_LABELS systemd)
  endif()
  if(ARG_BOOT_SETUP)
    if(NOT ARG_SYSTEMD)
      message(FATAL_ERROR "nvmf_ublk_guest_test(${ARG_NAME}): BOOT_SETUP needs SYSTEMD")
    endif()
    get_filename_component(setup ${ARG_BOOT_SETUP} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND args --boot-setup ${setup})
  endif()
  foreach(kv IN LISTS ARG_ENV)
    list(APPEND args --env ${kv})
  endforeach()
  foreach(fwd IN LISTS ARG_HOSTFWD)
    list(APPEND args --hostfwd ${fwd})
  endforeach()

  if(ARG_SCRIPT)
    set(scripts)
    foreach(s IN LISTS ARG_SCRIPT)
      get_filename_component(s ${s} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
      if(NOT EXISTS ${s})
        message(FATAL_ERROR "nvmf_ublk_guest_test(${ARG_NAME}): no script ${s}")
      endif()
      list(APPEND scripts ${s})
    endforeach()
    add_test(NAME ${ARG_NAME}
             COMMAND ${ARG_HOST_WRAPPER} ${NVMF_UBLK_RUN_GUEST} ${args}
                     -s ${NVMF_UBLK_GUEST_DIR}/suite ${scripts})
  else()
    add_test(NAME ${ARG_NAME}
             COMMAND ${ARG_HOST_WRAPPER} ${NVMF_UBLK_RUN_GUEST} ${args} -- ${ARG_COMMAND})
  endif()
  set_tests_properties(${ARG_NAME} PROPERTIES
    LABELS "guest;${ARG_LABELS}"
    TIMEOUT ${ARG_TIMEOUT}
    SKIP_RETURN_CODE 77
    FIXTURES_REQUIRED nvmf_ublk_guest
    RESOURCE_LOCK nvmf_ublk_guest
    PROCESSORS ${ARG_CPUS})
  if(ARG_KERNEL_SUITE)
    set_property(TEST ${ARG_NAME} APPEND PROPERTY LABELS kernel-${ARG_KERNEL_SUITE})
    set_property(TEST ${ARG_NAME} PROPERTY ENVIRONMENT NVMF_UBLK_GUEST_KERNEL_SUITE=${ARG_KERNEL_SUITE})
  endif()
endfunction()
