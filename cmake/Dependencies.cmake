# Every dependency comes from a Debian package installed by scripts/install-deps.sh.
find_package(PkgConfig REQUIRED)
find_package(PostgreSQL REQUIRED)          # libpq-fe.h only: the shim never links libpq
find_package(nlohmann_json 3.10 REQUIRED)  # JSON reports: well-kept, header-only
find_package(Boost 1.74 REQUIRED)          # core::demangle, as Boost.Stacktrace names frames
# Frames are symbolized by GCC's libbacktrace (libgcc-12-dev), called the way
# Boost.Stacktrace's libbacktrace backend calls it (module_backtrace.cpp); it is
# compiled into the shim, so a preloaded host maps no
# libboost_stacktrace_backtrace.so (and no libstdc++ it would drag in) at
# start-up. Debian's libboost_stacktrace_backtrace.a is not PIC (local-exec
# TLS); GCC's libbacktrace.a is.
execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libbacktrace.a
                OUTPUT_VARIABLE LIBBACKTRACE_GUESS OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT IS_ABSOLUTE "${LIBBACKTRACE_GUESS}")
  execute_process(COMMAND gcc -print-file-name=libbacktrace.a
                  OUTPUT_VARIABLE LIBBACKTRACE_GUESS OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
get_filename_component(LIBBACKTRACE_GUESS_DIR "${LIBBACKTRACE_GUESS}" DIRECTORY)
find_library(LIBBACKTRACE_LIB NAMES libbacktrace.a HINTS ${LIBBACKTRACE_GUESS_DIR} REQUIRED)
get_filename_component(LIBBACKTRACE_LIB_DIR "${LIBBACKTRACE_LIB}" DIRECTORY)
find_path(LIBBACKTRACE_INCLUDE_DIR backtrace.h HINTS ${LIBBACKTRACE_LIB_DIR}/include REQUIRED)
# The collector links a copy of libbacktrace.a whose calls to dl_iterate_phdr go
# to connleak_backtrace_dl_iterate_phdr (collector/report/module_backtrace.cpp):
# one libbacktrace state per module then reads that module alone, instead of
# the debug information of every loaded module. Only libbacktrace's calls are
# renamed; the unwinder and everything else keep the real function.
set(CONNLEAK_BACKTRACE_LIB ${CMAKE_BINARY_DIR}/connleak-libbacktrace/libbacktrace_per_module.a)
add_custom_command(OUTPUT ${CONNLEAK_BACKTRACE_LIB}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/connleak-libbacktrace
  COMMAND ${CMAKE_OBJCOPY} --redefine-sym dl_iterate_phdr=connleak_backtrace_dl_iterate_phdr
          ${LIBBACKTRACE_LIB} ${CONNLEAK_BACKTRACE_LIB}
  DEPENDS ${LIBBACKTRACE_LIB}
  COMMENT "libbacktrace.a with its module walk renamed")
add_custom_target(connleak_backtrace_lib DEPENDS ${CONNLEAK_BACKTRACE_LIB})
find_path(LIBUNWIND_INCLUDE_DIR libunwind.h PATH_SUFFIXES x86_64-linux-gnu REQUIRED)
find_path(SPDLOG_INCLUDE_DIR spdlog/spdlog.h REQUIRED)
find_path(FMT_INCLUDE_DIR fmt/format.h REQUIRED)
find_package(Threads REQUIRED)

# spdlog and fmt are compiled header-only into our code with hidden visibility, so
# the shim adds no libspdlog/libfmt to the host and cannot clash with the host's copy.
add_library(connleak_logging_deps INTERFACE)
target_include_directories(connleak_logging_deps SYSTEM INTERFACE ${SPDLOG_INCLUDE_DIR} ${FMT_INCLUDE_DIR})
target_compile_definitions(connleak_logging_deps INTERFACE SPDLOG_HEADER_ONLY SPDLOG_FMT_EXTERNAL FMT_HEADER_ONLY
                                                           SPDLOG_NO_TLS SPDLOG_NO_THREAD_ID)

if(CONNLEAK_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang" OR NOT CONNLEAK_SANITIZE STREQUAL "")
    message(FATAL_ERROR "CONNLEAK_FUZZ needs CMAKE_CXX_COMPILER=clang++ and no CONNLEAK_SANITIZE")
  endif()
  # Coverage for libFuzzer in everything it reaches; ASan+UBSan turn silent
  # memory errors and undefined behaviour into crashes it records. -O1 after the
  # build type's own -O so the fuzzer runs fast with usable stacks.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer -O1 -g)
  add_link_options(-fsanitize=address,undefined)
elseif(CONNLEAK_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(CONNLEAK_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread)
  add_link_options(-fsanitize=thread)
elseif(NOT CONNLEAK_SANITIZE STREQUAL "")
  message(FATAL_ERROR "CONNLEAK_SANITIZE must be address, thread or empty")
endif()
