# Shared compile options and the test helper.

add_library(nvmf_ublk_options INTERFACE)
target_compile_options(nvmf_ublk_options INTERFACE
  -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wimplicit-fallthrough -Wno-missing-field-initializers)
if(NVMF_UBLK_WERROR)
  target_compile_options(nvmf_ublk_options INTERFACE -Werror)
endif()
# Never -march=native: test binaries also run in an emulated guest CPU without AVX-512.
target_compile_options(nvmf_ublk_options INTERFACE -msse4.2 -mpclmul)
target_include_directories(nvmf_ublk_options INTERFACE
  ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)

if(NVMF_UBLK_FUZZ)
  # Coverage instrumentation for every library; the fuzzer executables add the libFuzzer driver.
  target_compile_options(nvmf_ublk_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                         -fno-omit-frame-pointer)
  target_link_options(nvmf_ublk_options INTERFACE -fsanitize=address,undefined)
  add_custom_target(fuzzers)
endif()

if(NVMF_UBLK_SANITIZE)
  string(REPLACE ";" "," _san "${NVMF_UBLK_SANITIZE}")
  target_compile_options(nvmf_ublk_options INTERFACE -fsanitize=${_san} -fno-omit-frame-pointer
                         -fno-sanitize-recover=all)
  target_link_options(nvmf_ublk_options INTERFACE -fsanitize=${_san})
endif()

# nvmf_ublk_library(NAME SOURCES... [DEPS ...]): one layer library.
function(nvmf_ublk_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_link_libraries(${name} PUBLIC nvmf_ublk_options ${ARG_DEPS})
endfunction()

# nvmf_ublk_test(NAME SOURCES... [DEPS ...] [LABELS unit|integration|guest|fuzz] [TIMEOUT s]
#                [SINGLE_THREAD]):
# a gtest binary registered with ctest; each binary is one ctest entry. SINGLE_THREAD: the test
# and the code it runs use one thread only (no reactor, engine, server or target thread), so
# ThreadSanitizer has nothing to check there: label `single-thread`, left out of `ninja
# tsan-tests` (tools/check's TSan tree builds that).
function(nvmf_ublk_test name)
  cmake_parse_arguments(ARG "SINGLE_THREAD" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(ARG_SINGLE_THREAD)
    list(APPEND ARG_LABELS single-thread)
  elseif(NOT ARG_LABELS MATCHES "guest|fuzz")
    set_property(GLOBAL APPEND PROPERTY NVMF_UBLK_TSAN_TEST_TARGETS ${name})
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE nvmf_ublk_options nvmf_ublk_testing ${ARG_DEPS}
                        GTest::gmock GTest::gtest_main)
  if(NOT ARG_LABELS MATCHES "guest|fuzz")
    set_property(GLOBAL APPEND PROPERTY NVMF_UBLK_HOST_TEST_TARGETS ${name})
  endif()
  if(NOT NVMF_UBLK_HOST_TESTS AND NOT ARG_LABELS MATCHES "guest|fuzz")
    # A tree for the guest tests only (tools/check runs unit and integration tests in its
    # sanitizer trees): the target exists but is neither built by default nor registered.
    set_target_properties(${name} PROPERTIES EXCLUDE_FROM_ALL ON)
    return()
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()

# nvmf_ublk_fuzzer(NAME SOURCE [DEPS ...]): a libFuzzer target (only with NVMF_UBLK_FUZZ=ON and clang),
# plus a ctest entry that replays the seed corpus (label fuzz).
function(nvmf_ublk_fuzzer name)
  cmake_parse_arguments(ARG "" "CORPUS" "SOURCES;DEPS" ${ARGN})
  if(NOT NVMF_UBLK_FUZZ)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${name} PRIVATE nvmf_ublk_options ${ARG_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  add_dependencies(fuzzers ${name})
  if(ARG_CORPUS)
    add_test(NAME ${name}_corpus COMMAND ${name} -runs=0 ${ARG_CORPUS})
    set_tests_properties(${name}_corpus PROPERTIES LABELS fuzz TIMEOUT 120)
  endif()
endfunction()
