#include "collector/journal/journal_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "collector/journal/journal_format.h"

namespace connleak::journal {

namespace {

template <typename T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Atomics in the header are read as plain integers: the bytes are a copy (or a
// read-only mapping of a file nobody writes any more).
std::uint64_t u64_at(const unsigned char* data, std::size_t offset) {
  return load<std::uint64_t>(data + offset);
}

void read_log(const unsigned char* log, std::size_t used, JournalContents& out) {
  std::size_t at = 0;
  while (at + sizeof(RecordHeader) <= used) {
    const unsigned char* rec = log + at;
    std::uint32_t type = load<std::uint32_t>(rec + offsetof(RecordHeader, type));
    std::uint32_t size = load<std::uint32_t>(rec + offsetof(RecordHeader, size));
    std::uint32_t id = load<std::uint32_t>(rec + offsetof(RecordHeader, id));
    std::uint32_t check = load<std::uint32_t>(rec + offsetof(RecordHeader, check));
    const unsigned char* payload = rec + sizeof(RecordHeader);
    if (type == 0) break;  // never published: the end
    if (size > used - at - sizeof(RecordHeader) || record_check(payload, size, id) != check) {
      out.notes.push_back("the journal's log ends in a torn record (" + std::to_string(used - at) +
                          " byte(s) skipped)");
      return;
    }
    switch (static_cast<RecordType>(type)) {
      case RecordType::kModule: {
        if (size < sizeof(ModulePayload)) break;
        auto p = load<ModulePayload>(payload);
        if (sizeof p + p.build_id_len + p.path_len > size) break;
        JournalModule m;
        m.load_address = p.load_address;
        m.low = p.low;
        m.high = p.high;
        m.build_id.assign(payload + sizeof p, payload + sizeof p + p.build_id_len);
        m.path.assign(reinterpret_cast<const char*>(payload + sizeof p + p.build_id_len),
                      p.path_len);
        out.modules.push_back(std::move(m));
        break;
      }
      case RecordType::kNativeStack: {
        std::vector<std::uint64_t> frames(size / 8);
        if (!frames.empty()) std::memcpy(frames.data(), payload, frames.size() * 8);
        out.native_stacks[id] = std::move(frames);
        break;
      }
      case RecordType::kPythonStack: {
        std::vector<JournalPyFrame> frames;
        std::size_t p = 0;
        while (p + sizeof(PyFramePayload) <= size) {
          auto f = load<PyFramePayload>(payload + p);
          p += sizeof f;
          if (p + f.file_len + f.function_len > size) break;
          JournalPyFrame frame;
          frame.file.assign(reinterpret_cast<const char*>(payload + p), f.file_len);
          frame.function.assign(reinterpret_cast<const char*>(payload + p + f.file_len),
                                f.function_len);
          frame.line = f.line;
          p += f.file_len + f.function_len;
          frames.push_back(std::move(frame));
        }
        out.python_stacks[id] = std::move(frames);
        break;
      }
      case RecordType::kString:
      case RecordType::kNone:
        break;
      default:
        out.notes.push_back("the journal's log holds a record of unknown type " +
                            std::to_string(type) + "; the rest of the log was skipped");
        return;
    }
    at += sizeof(RecordHeader) + padded(size);
  }
}

std::map<std::uint32_t, std::string> read_strings(const unsigned char* log, std::size_t used) {
  std::map<std::uint32_t, std::string> strings;
  std::size_t at = 0;
  while (at + sizeof(RecordHeader) <= used) {
    const unsigned char* rec = log + at;
    std::uint32_t type = load<std::uint32_t>(rec);
    std::uint32_t size = load<std::uint32_t>(rec + offsetof(RecordHeader, size));
    std::uint32_t id = load<std::uint32_t>(rec + offsetof(RecordHeader, id));
    std::uint32_t check = load<std::uint32_t>(rec + offsetof(RecordHeader, check));
    const unsigned char* payload = rec + sizeof(RecordHeader);
    if (type == 0 || size > used - at - sizeof(RecordHeader) ||
        record_check(payload, size, id) != check)
      break;
    if (type == static_cast<std::uint32_t>(RecordType::kString))
      strings[id].assign(reinterpret_cast<const char*>(payload), size);
    at += sizeof(RecordHeader) + padded(size);
  }
  return strings;
}

}  // namespace

std::optional<JournalContents> parse_journal(const unsigned char* data, std::size_t size,
                                             std::string* error) {
  if (size < sizeof(Header)) {
    *error = "truncated to " + std::to_string(size) + " byte(s), shorter than its header";
    return std::nullopt;
  }
  if (std::memcmp(data, kMagic, sizeof kMagic) != 0) {
    *error = "not a connleak journal (bad magic)";
    return std::nullopt;
  }
  Header h;
  std::memcpy(static_cast<void*>(&h), data, offsetof(Header, state));
  if (h.version != kVersion) {
    *error = "journal version " + std::to_string(h.version) +
             " is not supported (this connleak reads " + std::to_string(kVersion) + ")";
    return std::nullopt;
  }
  if (header_check(h) != h.header_check) {
    *error = "the journal's header is torn or corrupted (checksum mismatch)";
    return std::nullopt;
  }
  if (h.header_size != kHeaderSize || h.slot_size != sizeof(Slot) || h.slots_offset < kHeaderSize ||
      h.slot_count > (1u << 24) || h.argv_bytes > kArgvBytes ||
      h.log_offset < h.slots_offset + std::uint64_t{h.slot_count} * sizeof(Slot) ||
      h.log_capacity > (std::uint64_t{1} << 40)) {
    *error = "the journal's header describes an impossible layout";
    return std::nullopt;
  }
  JournalContents out;
  out.pid = h.pid;
  out.ppid = h.ppid;
  out.pidns_inode = h.pidns_inode;
  out.start_ticks = h.start_ticks;
  out.started_real_ns = h.started_real_ns;
  out.exit_reported = load<std::uint32_t>(data + offsetof(Header, state)) ==
                      static_cast<std::uint32_t>(State::kExitReported);
  if (auto language = load<std::uint32_t>(data + offsetof(Header, script_language));
      names_value<ScriptLanguage>(language))
    out.script_language = static_cast<ScriptLanguage>(language);
  out.opened = u64_at(data, offsetof(Header, opened));
  out.closed = u64_at(data, offsetof(Header, closed));
  out.not_journaled = u64_at(data, offsetof(Header, not_journaled));
  out.log_dropped = u64_at(data, offsetof(Header, log_dropped));
  out.last_real_ns = load<std::int64_t>(data + offsetof(Header, last_real_ns));
  const char* argv = reinterpret_cast<const char*>(data + offsetof(Header, argv));
  for (std::size_t at = 0; at < h.argv_bytes;) {
    std::size_t len = strnlen(argv + at, h.argv_bytes - at);
    out.argv.emplace_back(argv + at, len);
    at += len + 1;
  }

  std::uint64_t log_used = u64_at(data, offsetof(Header, log_used));
  std::size_t log_avail = size > h.log_offset ? size - h.log_offset : 0;
  if (log_used > h.log_capacity) log_used = h.log_capacity;
  if (log_used > log_avail) {
    out.notes.push_back("the journal is truncated: " + std::to_string(log_used - log_avail) +
                        " byte(s) of its stacks and module map are missing");
    log_used = log_avail;
  }
  const unsigned char* log = data + (h.log_offset < size ? h.log_offset : size);
  read_log(log, log_used, out);
  std::map<std::uint32_t, std::string> strings = read_strings(log, log_used);

  std::uint64_t torn = 0, missing = 0;
  for (std::uint32_t i = 0; i < h.slot_count; ++i) {
    std::uint64_t off = h.slots_offset + std::uint64_t{i} * sizeof(Slot);
    if (off + sizeof(Slot) > size) {
      missing = h.slot_count - i;
      break;
    }
    Slot s;
    std::memcpy(static_cast<void*>(&s), data + off, sizeof s);
    std::uint32_t seq = load<std::uint32_t>(data + off);
    if (seq == 0) continue;  // never used
    if ((seq & 1u) || slot_check(s) != s.check) {
      ++torn;
      continue;
    }
    if (s.kind == static_cast<std::uint8_t>(SlotKind::kFree)) continue;
    if (s.kind != static_cast<std::uint8_t>(SlotKind::kConnection) &&
        s.kind != static_cast<std::uint8_t>(SlotKind::kCheckout)) {
      ++torn;
      continue;
    }
    JournalEntry e;
    e.checkout = s.kind == static_cast<std::uint8_t>(SlotKind::kCheckout);
    e.library = s.library;
    e.protocol = s.protocol;
    e.record_id = s.record_id;
    e.handle = s.handle;
    e.link = s.link;
    e.opened_real_ns = s.opened_real_ns;
    e.thread = s.thread;
    e.fd = s.fd;
    e.stack = s.stack;
    e.py_stack = s.py_stack;
    if (auto it = strings.find(s.target); it != strings.end()) e.target = it->second;
    out.open.push_back(std::move(e));
  }
  if (torn)
    out.notes.push_back(
        std::to_string(torn) +
        " slot(s) were being written when the process died (torn) and were skipped");
  if (missing)
    out.notes.push_back("the journal is truncated: " + std::to_string(missing) +
                        " slot(s) of its table are missing");
  if (out.not_journaled)
    out.notes.push_back(std::to_string(out.not_journaled) +
                        " connection(s) were not journaled (the journal's slot table was full)");
  if (out.log_dropped)
    out.notes.push_back(std::to_string(out.log_dropped) +
                        " stack(s) or name(s) were not journaled (the journal's log was full)");
  return out;
}

std::optional<JournalContents> read_journal(const std::string& path, std::string* error) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    *error = path + " is not a regular file";
    return std::nullopt;
  }
  std::optional<JournalContents> out;
  std::string why;
  if (st.st_size == 0) {
    why = "empty";
  } else {
    void* mem = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) {
      why = std::string("cannot map it: ") + std::strerror(errno);
    } else {
      out = parse_journal(static_cast<const unsigned char*>(mem),
                          static_cast<std::size_t>(st.st_size), &why);
      munmap(mem, static_cast<std::size_t>(st.st_size));
    }
  }
  close(fd);
  if (!out) *error = path + ": " + why + "; skipping it";
  return out;
}

}  // namespace connleak::journal
