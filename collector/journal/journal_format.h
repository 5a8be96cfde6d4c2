#pragma once
// The crash-safe journal's file format, shared by the shim (writer) and the
// CLI (reader). A journal is <report_dir>/connleak.<pid>.<tag>.journal: a
// header, a table of fixed-size slots rewritten in place as connections and
// checkouts open and close, then an append-only log of what slots refer to
// (stacks, module map, strings), each written once. The file is memory-mapped
// by the writer, so whatever the process stored is in the page cache the
// moment it stores it: SIGKILL, the OOM killer or abort() cannot take it back.
//
// Torn writes: a slot carries a sequence number (odd while being written) and
// a checksum of its payload; a log record is published by storing its type
// last and carries a checksum too. A reader skips what does not check out.
// Host byte order: a journal is read on the machine that wrote it.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace connleak::journal {

inline constexpr char kMagic[8] = {'C', 'L', 'J', 'R', 'N', 'L', '\x1a', '\0'};
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 4096;
inline constexpr std::size_t kArgvBytes = 2048;
inline constexpr std::uint32_t kDefaultSlots = 16384;
inline constexpr std::size_t kDefaultLogBytes = std::size_t{3} << 20;

enum class State : std::uint32_t { kRunning = 0, kExitReported = 1 };

struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint32_t slot_count;
  std::uint32_t slot_size;
  std::uint64_t slots_offset;
  std::uint64_t log_offset;
  std::uint64_t log_capacity;
  std::int64_t pid;
  std::int64_t ppid;
  std::uint64_t pidns_inode;
  std::uint64_t start_ticks;  // /proc/<pid>/stat field 22: with pid, names the process
  std::int64_t started_real_ns;
  std::uint32_t argv_bytes;    // NUL-separated, already redacted
  std::uint32_t header_check;  // checksum of everything above
  // Written while the process runs (atomics on the shared mapping).
  std::atomic<std::uint32_t> state;
  // The ScriptLanguage of the kPythonStack records (Python, Ruby...), stored
  // with the first one; 0 in journals written before other languages: Python.
  std::atomic<std::uint32_t> script_language;
  std::atomic<std::uint64_t> log_used;       // bytes of published log records
  std::atomic<std::uint64_t> opened;         // connections opened (summary)
  std::atomic<std::uint64_t> closed;         // connections closed by the program
  std::atomic<std::uint64_t> not_journaled;  // slot table full: not in the journal
  std::atomic<std::uint64_t> log_dropped;    // log full: a stack or name left out
  std::atomic<std::int64_t> last_real_ns;    // wall clock of the last open
  char argv[kArgvBytes];
};
static_assert(sizeof(Header) <= kHeaderSize);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

enum class SlotKind : std::uint8_t { kFree = 0, kConnection = 1, kCheckout = 2 };

// 64 bytes, one cache line: a slot is rewritten by one thread at a time (the
// one that owns it between pop and push of the free list).
struct Slot {
  std::atomic<std::uint32_t> seq;  // odd: being written
  std::uint8_t kind;               // SlotKind
  std::uint8_t library;            // connleak::Library
  std::uint8_t protocol;           // 0 none, 1 postgresql, 2 mysql
  std::uint8_t flags;
  std::uint32_t stack;     // native stack id (log record kNativeStack)
  std::uint32_t py_stack;  // python stack id (kPythonStack); 0 none
  std::uint32_t target;    // string id (kString); 0 none
  std::int32_t thread;
  std::uint64_t record_id;  // connection id, or checkout id
  std::uint64_t handle;     // connection: handle; checkout: pool id
  std::int64_t opened_real_ns;
  std::uint64_t link;  // checkout: the connection id it lends (0 unlinked)
  std::int32_t fd;
  std::uint32_t check;  // slot_check() of the payload
};
static_assert(sizeof(Slot) == 64);

enum class RecordType : std::uint32_t {
  kNone = 0,
  kModule = 1,       // payload: ModulePayload, build id bytes, path bytes
  kNativeStack = 2,  // payload: uint64 frames[]
  kPythonStack =
      3,  // a script stack (header's script_language): PyFramePayload + file + function, repeated
  kString = 4,  // payload: bytes
};

struct RecordHeader {
  std::atomic<std::uint32_t> type;  // stored last: 0 = not published
  std::uint32_t size;               // payload bytes (the record is padded to 8)
  std::uint32_t id;                 // stack id, string id; modules: sequence number
  std::uint32_t check;              // payload_check(payload, size) ^ id ^ size
};
static_assert(sizeof(RecordHeader) == 16);

struct ModulePayload {
  std::uint64_t load_address;  // dlpi_addr: file address = frame - load_address
  std::uint64_t low;           // lowest and highest mapped address of its PT_LOAD segments
  std::uint64_t high;
  std::uint16_t build_id_len;
  std::uint16_t path_len;
  std::uint32_t pad;
};
static_assert(sizeof(ModulePayload) == 32);

struct PyFramePayload {
  std::int32_t line;
  std::uint16_t file_len;
  std::uint16_t function_len;
};

inline constexpr std::size_t padded(std::size_t n) {
  return (n + 7) & ~std::size_t{7};
}

// FNV-1a, 32 bit: cheap enough for the open/close path, good enough to tell a
// half-written slot from a whole one.
inline std::uint32_t fnv32(const void* data, std::size_t n, std::uint32_t h = 2166136261u) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

// Everything between seq and check, a word at a time (7 multiplies: the
// open/close path pays this twice per connection).
inline std::uint32_t slot_check(const Slot& s) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&s) + offsetof(Slot, kind);
  std::uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (std::size_t i = 0; i < 7; ++i) {
    std::uint64_t w;
    std::memcpy(&w, bytes + 8 * i, sizeof w);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
  }
  h ^= h >> 29;
  return static_cast<std::uint32_t>(h ^ (h >> 32)) | 1u;  // never 0: a zeroed slot fails
}
static_assert(offsetof(Slot, check) - offsetof(Slot, kind) == 56);

inline std::uint32_t record_check(const void* payload, std::uint32_t size, std::uint32_t id) {
  return fnv32(payload, size) ^ id ^ (size * 2654435761u);
}

inline std::uint32_t header_check(const Header& h) {
  return fnv32(&h, offsetof(Header, header_check));
}

// connleak.<pid>.<tag>.journal; <tag> is report_writer's process_tag()
// ("<pid namespace inode>-<start ticks>"), so pid reuse never mixes two processes.
inline constexpr const char* kFilePrefix = "connleak.";
inline constexpr const char* kFileSuffix = ".journal";

}  // namespace connleak::journal
