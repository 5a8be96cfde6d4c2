#pragma once
// Small helpers that several parts of connleak need, written once: address
// formatting, whitespace trimming and the names of the files and sockets a
// process's reports are found by. (The write-all loop is logger.h's
// write_all_no_sigpipe.)
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace connleak {

// "0x55d0c0ffee00": how reports spell addresses.
std::string hex(std::uint64_t v);

// ASCII whitespace only, never <cctype>: the host may have called setlocale(),
// and option, suppression and conninfo syntax must not change with it.
bool is_ascii_space(char c);
std::string_view trim(std::string_view s);

// "connleak.<pid>.json" (the exit report) or "connleak.<pid>.<n>.json" (dump n).
std::string report_file_name(pid_t pid, unsigned dump_number = 0);
// The abstract unix socket name a process's control socket listens on.
std::string control_socket_name(pid_t pid);

}  // namespace connleak
