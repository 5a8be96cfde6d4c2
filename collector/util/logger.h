#pragma once
// The one logger for everything the tool prints (warnings, alerts, reports).
// Synchronous and never destroyed: it must still work inside atexit handlers,
// _exit hooks and after static destructors have run.
#include <spdlog/logger.h>

#include <string_view>

namespace connleak {

spdlog::logger& log();
// Prints one line ("connleak: " is NOT added) straight to stderr; used where even
// spdlog may be unsafe (fork child before re-initialisation, late exit).
void raw_line(std::string_view line);
// write(2) of all of `data` to `fd` that never raises SIGPIPE in the host (a
// stderr pipe whose reader is gone would kill it with status 141): SIGPIPE is
// blocked in this thread around the write and one our write made pending is
// consumed, as the sanitizers do. Async-signal-safe; errno is preserved.
void write_all_no_sigpipe(int fd, const char* data, std::size_t len) noexcept;
// Prints a multi-line block (a report) through the logger, line by line.
void log_block(std::string_view text);

}  // namespace connleak
