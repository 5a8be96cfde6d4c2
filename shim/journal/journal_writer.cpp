#include "shim/journal/journal_writer.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "collector/core/checkouts.h"
#include "collector/core/fork_gate.h"
#include "collector/core/fork_mutex.h"
#include "collector/core/fork_safe_static.h"
#include "collector/core/journal_sink.h"
#include "collector/core/registry.h"
#include "collector/core/script_frames.h"
#include "collector/journal/build_id.h"
#include "collector/journal/journal_format.h"
#include "collector/report/report_builder.h"
#include "collector/report/report_writer.h"
#include "collector/util/logger.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"

namespace connleak::shim::journal {

using namespace connleak::journal;

namespace {

constexpr std::size_t kStackBits = std::size_t{1} << 20;  // StackDepot holds at most 1M stacks
constexpr std::size_t kStrings = 4096;                    // distinct targets journaled
constexpr std::size_t kModules = 1024;

std::uint8_t protocol_code(const char* protocol) {
  if (!protocol) return 0;
  if (std::strcmp(protocol, "postgresql") == 0) return 1;
  if (std::strcmp(protocol, "mysql") == 0) return 2;
  return 0;
}

// The mapped file and what this process already wrote into it. One instance
// per process, never destroyed (hooks run during exit).
class Writer final : public JournalSink {
 public:
  std::uint32_t opened(const ConnRecord& r) override {
    std::uint32_t idx = claim();
    if (idx == kNone) return 0;
    Slot tmp{};
    fill(tmp, r);
    store(idx, tmp);
    header_->opened.fetch_add(1, std::memory_order_relaxed);
    header_->last_real_ns.store(r.opened.real_ns, std::memory_order_relaxed);
    return idx + 1;
  }

  std::uint32_t checkout_opened(const CheckoutRecord& r) override {
    std::uint32_t idx = claim();
    if (idx == kNone) return 0;
    Slot tmp{};
    fill_common(tmp, SlotKind::kCheckout, r.stack, r.py_stack, r.thread, r.id, r.pool,
                r.checked_out.real_ns);
    tmp.link = r.connection;
    tmp.fd = -1;
    store(idx, tmp);
    return idx + 1;
  }

  void updated(std::uint32_t slot, const ConnRecord& r) override {
    if (!mapped_for_us(slot)) return;
    Slot tmp{};
    fill(tmp, r);
    store(slot - 1, tmp);
  }

  void closed(std::uint32_t slot) override {
    if (!mapped_for_us(slot)) return;
    Slot tmp{};
    tmp.kind = static_cast<std::uint8_t>(SlotKind::kFree);
    if (slots_[slot - 1].kind == static_cast<std::uint8_t>(SlotKind::kConnection))
      header_->closed.fetch_add(1, std::memory_order_relaxed);
    // No clock read here (a close is on the hot path): ages in a killed
    // process's report are counted to its last journaled open.
    store(slot - 1, tmp);
    push(slot - 1);
  }

  void finish() {
    if (state_.load(std::memory_order_acquire) != kReady || owner_ != getpid()) return;
    if (options().keep_journal) {
      header_->state.store(static_cast<std::uint32_t>(State::kExitReported),
                           std::memory_order_release);
      return;
    }
    // The mapping stays: a thread still in a hook may write one more slot.
    header_->state.store(static_cast<std::uint32_t>(State::kExitReported),
                         std::memory_order_release);
    unlink(path_.c_str());
  }

  // Every lock here is a ForkMutex (re-initialised by fork_child_all(), and
  // never destroyed: it stays on the fork list), so only plain state is reset.
  void after_fork_child() {
    // The mapping is shared with the parent: the child must never store
    // through it again. What this process wrote (stacks, strings, modules)
    // describes the parent's file; the child's journal starts empty.
    if (state_.load(std::memory_order_relaxed) == kReady) munmap(base_, size_);
    base_ = nullptr;
    header_ = nullptr;
    slots_ = nullptr;
    log_ = nullptr;
    log_used_ = 0;
    slot_count_ = 0;
    delete[] next_;
    delete[] native_written_;
    delete[] python_written_;
    delete[] modules_;
    next_ = nullptr;
    native_written_ = python_written_ = nullptr;
    modules_ = nullptr;
    module_count_ = 0;
    for (auto& k : string_keys_) k.store(nullptr, std::memory_order_relaxed);
    next_string_ = 1;
    free_head_.store(0, std::memory_order_relaxed);
    state_.store(kNotCreated, std::memory_order_release);
  }

 private:
  static constexpr std::uint32_t kNone = ~0u;
  enum : int { kNotCreated = 0, kReady = 1, kFailed = 2 };

  bool ready() {
    int s = state_.load(std::memory_order_acquire);
    if (s == kReady) return true;
    if (s == kFailed) return false;
    std::lock_guard<ForkMutex> lock(create_mutex_);
    if (state_.load(std::memory_order_acquire) == kNotCreated) create();
    return state_.load(std::memory_order_acquire) == kReady;
  }

  // A slot handed out by this process's journal (not one of a parent's).
  bool mapped_for_us(std::uint32_t slot) const {
    return slot != 0 && state_.load(std::memory_order_acquire) == kReady && slot <= slot_count_;
  }

  // --- slot table: a lock-free free list (Treiber stack, tagged head) ------
  std::uint32_t pop() {
    std::uint64_t head = free_head_.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t top = static_cast<std::uint32_t>(head);
      if (top == 0) return kNone;
      std::uint32_t next = next_[top - 1].load(std::memory_order_relaxed);
      std::uint64_t tagged = ((head >> 32) + 1) << 32 | next;
      if (free_head_.compare_exchange_weak(head, tagged, std::memory_order_acq_rel,
                                           std::memory_order_acquire))
        return top - 1;
    }
  }
  void push(std::uint32_t idx) {
    std::uint64_t head = free_head_.load(std::memory_order_acquire);
    for (;;) {
      next_[idx].store(static_cast<std::uint32_t>(head), std::memory_order_relaxed);
      std::uint64_t tagged = ((head >> 32) + 1) << 32 | (idx + 1);
      if (free_head_.compare_exchange_weak(head, tagged, std::memory_order_acq_rel,
                                           std::memory_order_acquire))
        return;
    }
  }

  // Seqlock-style store: odd while the payload is being written, so a process
  // killed in the middle leaves a slot the reader recognises as torn.
  void store(std::uint32_t idx, Slot& tmp) {
    Slot& s = slots_[idx];
    std::uint32_t seq = s.seq.load(std::memory_order_relaxed);
    s.seq.store(seq | 1u, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    tmp.check = slot_check(tmp);
    std::memcpy(reinterpret_cast<char*>(&s) + sizeof s.seq,
                reinterpret_cast<const char*>(&tmp) + sizeof tmp.seq, sizeof(Slot) - sizeof s.seq);
    s.seq.store((seq | 1u) + 1, std::memory_order_release);
  }

  // A free slot for a new record, or kNone: no journal, or a full one (the
  // record is then counted as not journaled, and a report says how many).
  std::uint32_t claim() {
    if (!ready()) return kNone;
    std::uint32_t idx = pop();
    if (idx == kNone) header_->not_journaled.fetch_add(1, std::memory_order_relaxed);
    return idx;
  }

  // What connection and checkout slots share; their stacks written to the log.
  void fill_common(Slot& tmp, SlotKind kind, StackId stack, StackId script_stack, int thread,
                   std::uint64_t id, std::uint64_t handle, std::int64_t opened_real_ns) {
    tmp.kind = static_cast<std::uint8_t>(kind);
    tmp.stack = native_stack(stack);
    tmp.py_stack = python_stack(script_stack);
    tmp.thread = thread;
    tmp.record_id = id;
    tmp.handle = handle;
    tmp.opened_real_ns = opened_real_ns;
  }

  void fill(Slot& tmp, const ConnRecord& r) {
    fill_common(tmp, SlotKind::kConnection, r.open_stack, r.py_open_stack, r.thread, r.id, r.handle,
                r.opened.real_ns);
    const SocketPart* socket = r.socket();
    tmp.library = static_cast<std::uint8_t>(r.library());
    tmp.protocol = protocol_code(socket ? socket->protocol : nullptr);
    tmp.target = string_id(r.target);
    tmp.fd = socket ? socket->fd : -1;
  }

  // --- stacks: written once, the first time a slot refers to them ----------
  static bool test(const std::atomic<std::uint64_t>* bits, StackId id) {
    return bits[id >> 6].load(std::memory_order_acquire) >> (id & 63) & 1;
  }
  static void set(std::atomic<std::uint64_t>* bits, StackId id) {
    bits[id >> 6].fetch_or(std::uint64_t{1} << (id & 63), std::memory_order_release);
  }

  std::uint32_t native_stack(StackId id) {
    if (id == 0 || id >= kStackBits) return 0;
    if (test(native_written_, id)) return id;
    std::span<const std::uintptr_t> frames = StackDepot::instance().get(id);
    if (frames.empty()) return 0;
    sync_modules();  // a frame may be in a library loaded since the last stack
    std::lock_guard<ForkMutex> lock(log_mutex_);
    if (test(native_written_, id)) return id;
    if (!append(RecordType::kNativeStack, id, frames.data(), frames.size_bytes())) return 0;
    set(native_written_, id);
    return id;
  }

  std::uint32_t python_stack(StackId id) {
    if (id == 0 || id >= kStackBits) return 0;
    if (test(python_written_, id)) return id;
    std::span<const std::uintptr_t> frames = script_depot().get(id);
    if (frames.empty()) return 0;
    std::lock_guard<ForkMutex> lock(log_mutex_);
    if (test(python_written_, id)) return id;
    std::size_t n = 0;
    for (std::uintptr_t f : frames) {
      const auto* info = reinterpret_cast<const ScriptFrame*>(f);
      PyFramePayload p{};
      std::size_t file_len = std::min<std::size_t>(std::strlen(info->file), 4096);
      std::size_t fn_len = std::min<std::size_t>(std::strlen(info->function), 1024);
      if (n + sizeof p + file_len + fn_len > sizeof scratch_) break;
      p.line = info->line;
      p.file_len = static_cast<std::uint16_t>(file_len);
      p.function_len = static_cast<std::uint16_t>(fn_len);
      std::memcpy(scratch_ + n, &p, sizeof p);
      std::memcpy(scratch_ + n + sizeof p, info->file, file_len);
      std::memcpy(scratch_ + n + sizeof p + file_len, info->function, fn_len);
      n += sizeof p + file_len + fn_len;
    }
    header_->script_language.store(static_cast<std::uint32_t>(script_host()),
                                   std::memory_order_relaxed);
    if (!append(RecordType::kPythonStack, id, scratch_, n)) return 0;
    set(python_written_, id);
    return id;
  }

  // Targets are interned (one pointer per distinct text): a lock-free
  // pointer -> id table answers the hot path.
  std::uint32_t string_id(const char* text) {
    if (!text || !*text) return 0;
    std::size_t h = (reinterpret_cast<std::uintptr_t>(text) >> 3) * 0x9e3779b97f4a7c15ULL >> 52;
    for (std::size_t i = 0; i < kStrings; ++i) {
      std::size_t at = (h + i) & (kStrings - 1);
      const char* key = string_keys_[at].load(std::memory_order_acquire);
      if (key == text) return string_ids_[at].load(std::memory_order_acquire);
      if (key) continue;
      std::lock_guard<ForkMutex> lock(log_mutex_);
      key = string_keys_[at].load(std::memory_order_acquire);
      if (key == text) return string_ids_[at].load(std::memory_order_acquire);
      if (key) continue;
      std::uint32_t id = next_string_++;
      if (!append(RecordType::kString, id, text, std::min<std::size_t>(std::strlen(text), 4096)))
        return 0;
      string_ids_[at].store(id, std::memory_order_release);
      string_keys_[at].store(text, std::memory_order_release);
      return id;
    }
    return 0;
  }

  // --- the log: append-only, one writer at a time (log_mutex_) ------------
  bool append(RecordType type, std::uint32_t id, const void* payload, std::size_t size) {
    std::size_t need = sizeof(RecordHeader) + padded(size);
    if (size > UINT32_MAX || log_used_ + need > log_capacity_) {
      header_->log_dropped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    auto* rec = reinterpret_cast<RecordHeader*>(log_ + log_used_);
    rec->size = static_cast<std::uint32_t>(size);
    rec->id = id;
    std::memcpy(reinterpret_cast<char*>(rec) + sizeof *rec, payload, size);
    rec->check = record_check(reinterpret_cast<char*>(rec) + sizeof *rec, rec->size, id);
    rec->type.store(static_cast<std::uint32_t>(type), std::memory_order_release);
    log_used_ += need;
    header_->log_used.store(log_used_, std::memory_order_release);
    return true;
  }

  // --- the module map: path, build id and address range of every loaded
  // object, written when first seen (dl_iterate_phdr outside the log lock:
  // the loader's lock must never be waited on while holding ours).
  struct ModuleSeen {
    std::uintptr_t load;
    const char* name;
    std::uintptr_t low, high;
    unsigned char build_id[64];
    std::size_t build_id_len;
  };
  static int collect(dl_phdr_info* info, std::size_t, void* data) {
    auto* list = static_cast<std::vector<ModuleSeen>*>(data);
    if (list->size() >= kModules) return 1;
    ModuleSeen m{};
    m.load = info->dlpi_addr;
    m.name = info->dlpi_name ? info->dlpi_name : "";
    m.low = UINTPTR_MAX;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
      const ElfW(Phdr)& ph = info->dlpi_phdr[i];
      if (ph.p_type == PT_LOAD) {
        m.low = std::min<std::uintptr_t>(m.low, info->dlpi_addr + ph.p_vaddr);
        m.high = std::max<std::uintptr_t>(m.high, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
      } else if (ph.p_type == PT_NOTE && m.build_id_len == 0) {
        m.build_id_len =
            find_build_id(reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr),
                          ph.p_filesz, m.build_id, sizeof m.build_id);
      }
    }
    if (m.low == UINTPTR_MAX) return 0;
    list->push_back(m);
    return 0;
  }

  void sync_modules() {
    std::vector<ModuleSeen> now;
    now.reserve(64);
    {
      fork_gate::Walk walk;
      dl_iterate_phdr(&collect, &now);
    }
    std::lock_guard<ForkMutex> lock(log_mutex_);
    for (const ModuleSeen& m : now) {
      bool known = false;
      for (std::size_t i = 0; i < module_count_ && !known; ++i)
        known = modules_[i].load == m.load && modules_[i].low == m.low;
      if (known || module_count_ >= kModules) continue;
      // The main program is "" to the loader.
      const char* path = *m.name ? m.name : exe_path_.c_str();
      std::size_t path_len = std::min<std::size_t>(std::strlen(path), 4096);
      ModulePayload p{};
      p.load_address = m.load;
      p.low = m.low;
      p.high = m.high;
      p.build_id_len = static_cast<std::uint16_t>(m.build_id_len);
      p.path_len = static_cast<std::uint16_t>(path_len);
      std::size_t n = 0;
      std::memcpy(scratch_, &p, sizeof p);
      n += sizeof p;
      std::memcpy(scratch_ + n, m.build_id, m.build_id_len);
      n += m.build_id_len;
      std::memcpy(scratch_ + n, path, path_len);
      n += path_len;
      if (!append(RecordType::kModule, static_cast<std::uint32_t>(module_count_), scratch_, n))
        return;
      modules_[module_count_++] = m;
    }
  }

  // --- creation: the first open of the process (syscalls happen here only) -
  void create() {
    Reentry guard;
    state_.store(kFailed, std::memory_order_release);  // until proven otherwise
    const std::string& dir = options().report_dir;
    std::string error;
    if (!ensure_directory(dir, &error) || !trusted_directory(dir, &error)) {
      return;  // the exit report says why, once; the journal stays silent
    }
    const pid_t pid = getpid();
    const std::string tag = process_tag();
    const std::size_t slots = kDefaultSlots;
    const std::size_t slots_offset = kHeaderSize;
    const std::size_t log_offset = slots_offset + slots * sizeof(Slot);
    const std::size_t size = log_offset + kDefaultLogBytes;
    int fd = -1;
    std::string path;
    // A process that exec'd keeps its pid and start time: its earlier image's
    // journal may hold the plain name.
    for (int k = 0; k < 8 && fd < 0; ++k) {
      path = dir + "/" + kFilePrefix + std::to_string(pid) + "." + tag +
             (k ? "." + std::to_string(k) : std::string()) + kFileSuffix;
      fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
      log().warn("connleak: cannot create the journal {}: {}; a kill will lose the report", path,
                 std::strerror(errno));
      return;
    }
    // Blocks reserved now: a store into a sparse page on a full disk would be
    // a SIGBUS in the host.
    int rc = posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (rc == EOPNOTSUPP || rc == EINVAL)
      rc = ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
    void* mem =
        rc == 0 ? mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    // The mapping keeps the file; no descriptor of ours stays open for the
    // host's close loops to break.
    syscall(SYS_close, fd);
    if (mem == MAP_FAILED) {
      log().warn("connleak: cannot map the journal {}: {}; a kill will lose the report", path,
                 std::strerror(rc ? rc : errno));
      unlink(path.c_str());
      return;
    }
    next_ = new std::atomic<std::uint32_t>[slots];
    native_written_ = new std::atomic<std::uint64_t>[kStackBits / 64]();
    python_written_ = new std::atomic<std::uint64_t>[kStackBits / 64]();
    modules_ = new ModuleSeen[kModules];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe_path_.assign(exe, n > 0 ? static_cast<std::size_t>(n) : 0);

    base_ = static_cast<char*>(mem);
    size_ = size;
    header_ = reinterpret_cast<Header*>(base_);
    slots_ = reinterpret_cast<Slot*>(base_ + slots_offset);
    log_ = base_ + log_offset;
    log_capacity_ = kDefaultLogBytes;
    log_used_ = 0;
    slot_count_ = static_cast<std::uint32_t>(slots);
    path_ = path;
    owner_ = pid;

    Header& h = *header_;
    std::memcpy(h.magic, kMagic, sizeof h.magic);
    h.version = kVersion;
    h.header_size = kHeaderSize;
    h.slot_count = slot_count_;
    h.slot_size = sizeof(Slot);
    h.slots_offset = slots_offset;
    h.log_offset = log_offset;
    h.log_capacity = log_capacity_;
    h.pid = pid;
    h.ppid = getppid();
    std::size_t dash = tag.find('-');
    h.pidns_inode = std::strtoull(tag.c_str(), nullptr, 10);
    h.start_ticks =
        dash == std::string::npos ? 0 : std::strtoull(tag.c_str() + dash + 1, nullptr, 10);
    h.started_real_ns = now().real_ns;
    std::string argv;
    for (const std::string& a : current_process().argv) {  // redacted
      if (argv.size() + a.size() + 1 > kArgvBytes) break;
      argv += a;
      argv.push_back('\0');
    }
    std::memcpy(h.argv, argv.data(), argv.size());
    h.argv_bytes = static_cast<std::uint32_t>(argv.size());
    h.header_check = header_check(h);

    // Every slot free: 1..slots chained, slot 0 on top.
    for (std::size_t i = 0; i < slots; ++i)
      next_[i].store(i + 1 < slots ? static_cast<std::uint32_t>(i + 2) : 0,
                     std::memory_order_relaxed);
    free_head_.store(1, std::memory_order_relaxed);
    state_.store(kReady, std::memory_order_release);
    sync_modules();
  }

  std::atomic<int> state_{kNotCreated};
  ForkMutex create_mutex_;
  ForkMutex log_mutex_;
  char* base_ = nullptr;
  std::size_t size_ = 0;
  Header* header_ = nullptr;
  Slot* slots_ = nullptr;
  char* log_ = nullptr;
  std::size_t log_capacity_ = 0;
  std::size_t log_used_ = 0;  // guarded by log_mutex_
  std::uint32_t slot_count_ = 0;
  pid_t owner_ = 0;
  std::string path_;
  std::string exe_path_;
  std::atomic<std::uint64_t> free_head_{0};
  std::atomic<std::uint32_t>* next_ = nullptr;
  std::atomic<std::uint64_t>* native_written_ = nullptr;
  std::atomic<std::uint64_t>* python_written_ = nullptr;
  std::atomic<const char*> string_keys_[kStrings] = {};
  std::atomic<std::uint32_t> string_ids_[kStrings] = {};
  std::uint32_t next_string_ = 1;  // guarded by log_mutex_
  ModuleSeen* modules_ = nullptr;
  std::size_t module_count_ = 0;  // guarded by log_mutex_
  char scratch_[64 * 1024];       // guarded by log_mutex_
};

Writer* g_writer = nullptr;

}  // namespace

void install() {
  if (options().report_dir.empty() || !options().journal) return;
  Writer& writer =
      fork_safe_static([] { return new Writer; });  // never destroyed: hooks run during exit
  g_writer = &writer;
  set_journal_sink(&writer);
}

void finish_after_exit_report() {
  if (g_writer) g_writer->finish();
}

void after_fork_child() {
  if (!g_writer) return;
  g_writer->after_fork_child();
}

}  // namespace connleak::shim::journal
