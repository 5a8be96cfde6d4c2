#pragma once
// Client side of the shim's control socket: the abstract unix socket
// "\0connleak.<pid>"; the client writes "dump v2\n" and reads the reply until
// EOF: where the process left the dump's file, then the full JSON report of a
// dump (trigger "request"); see collector/report/dump_reply.h.
#include <sys/types.h>

#include <chrono>
#include <string>

namespace connleak::cli {

// Checks that `pid` exists and has libconnleak.so mapped, then asks it for a
// dump. Returns the raw reply. Throws Failure (exit 2) with one clear line:
// no such process, not running under connleak, not ours to ask, did not
// answer, or no answer within `timeout`.
std::string request_dump(pid_t pid, std::chrono::milliseconds timeout);

}  // namespace connleak::cli
