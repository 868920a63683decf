# Helpers shared by every folder's CMakeLists.txt.

# Where tests find the shared models and data (flags and env still win at run time).
get_filename_component(LLMOS_SHARED_DIR "${CMAKE_SOURCE_DIR}/../shared" ABSOLUTE)
if(DEFINED ENV{LLMOS_MODELS})
  set(LLMOS_TEST_MODELS "$ENV{LLMOS_MODELS}")
else()
  set(LLMOS_TEST_MODELS "${LLMOS_SHARED_DIR}/models")
endif()
if(DEFINED ENV{LLMOS_DATA})
  set(LLMOS_TEST_DATA "$ENV{LLMOS_DATA}")
else()
  set(LLMOS_TEST_DATA "${LLMOS_SHARED_DIR}/data")
endif()

# Environment every test runs with: the data folders, the binaries, MPI as
# root, and the sanitizer settings (Open MPI's own leaks suppressed, ours not).
set(LLMOS_TEST_ENV
  "LLMOS_MODELS=${LLMOS_TEST_MODELS}"
  "LLMOS_DATA=${LLMOS_TEST_DATA}"
  "LLMOS_BIN=${CMAKE_BINARY_DIR}/bin"
  "LLMOS_SOURCE=${CMAKE_SOURCE_DIR}"
  "OMPI_ALLOW_RUN_AS_ROOT=1"
  "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
  "OMPI_MCA_rmaps_base_oversubscribe=1"
  "PYTHON=/usr/bin/python3"
  "PYTHONPATH=${CMAKE_BINARY_DIR}/python:${CMAKE_SOURCE_DIR}/tests/lib"
  "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0"
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_odr_violation=0"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)

# llmos_test(NAME <name> COMMAND <cmd...> LABELS <unit|integration|slow> [TIMEOUT s])
function(llmos_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;LABELS" ${ARGN})
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                       ENVIRONMENT "${LLMOS_TEST_ENV}")
endfunction()
