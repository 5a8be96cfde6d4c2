#include "shim/ruby/ruby_stack.h"

#include <dlfcn.h>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>

#include "collector/core/fork_mutex.h"
#include "collector/core/script_frames.h"
#include "shim/ruby/ruby_object.h"
#include "shim/runtime/guard.h"

namespace connleak::shim {

namespace {

// Why each of these is safe on the calling thread without the GVL (ruby-pg
// 1.4.5 calls PQconnectStart, PQconnectPoll, PQconnectdb ... through
// rb_thread_call_without_gvl, so the hooked call usually runs without it):
//  - rb_profile_frames walks the calling thread's own control frames (its
//    execution context, a thread-local of libruby): only this thread pushes
//    or pops them, and it is inside C until we return. It reads the frames,
//    each frame's iseq or method entry and the iseq's line table; it neither
//    allocates nor raises. Its `start` argument does not skip frames in Ruby
//    3.1 (the loop forgets to step), so it is always 0 here.
//  - rb_profile_frame_path / _label return the iseq's existing path and label
//    Strings (no allocation, unlike _full_label or _classpath), and the bytes
//    of a String are read with the headers' inline layout functions
//    (ruby_object.cpp), never through a call that could allocate or raise.
//  - None of these objects can be freed while we read them: each is reachable
//    from a frame of this thread, which Ruby's GC marks. Only the compacting
//    GC (GC.compact, GC.auto_compact) moves reachable objects; it runs inside
//    a garbage collection, so a read is used only if no collection was running
//    when it began (rb_during_gc) and none began while it ran (rb_gc_count):
//    otherwise the capture is dropped (0 frames), never used half-moved.
//  - rb_during_gc and rb_gc_count are plain loads from the VM's objspace.
struct RubyApi {
  int (*profile_frames)(int start, int limit, std::uintptr_t* frames, int* lines);
  std::uintptr_t (*frame_path)(std::uintptr_t frame);
  std::uintptr_t (*frame_label)(std::uintptr_t frame);
  int (*during_gc)();
  std::size_t (*gc_count)();
  // The VM (null before ruby_init and after ruby_vm_destruct, whose freed
  // thread would otherwise still be this thread's execution context).
  void* const* vm_ptr;
};

template <typename T>
bool load(T& slot, const char* name) {
  slot = reinterpret_cast<T>(dlsym(RTLD_DEFAULT, name));
  return slot != nullptr;
}

// Looked up once, in the global scope: the ruby executable links libruby, so
// its C API is there (a libruby dlopen'ed RTLD_LOCAL by an embedder is not
// found, and that process gets no Ruby frames).
const RubyApi* api() {
  static std::atomic<int> state{0};  // 0 unknown, 1 absent, 2 present
  static RubyApi table;
  int s = state.load(std::memory_order_acquire);
  if (s != 0) return s == 2 ? &table : nullptr;
  static constinit ForkMutex mutex;
  std::lock_guard<ForkMutex> lock(mutex);
  if ((s = state.load(std::memory_order_relaxed)) != 0) return s == 2 ? &table : nullptr;
  Reentry guard;
  RubyApi t{};
  const int* version = nullptr;
  bool ok = load(t.profile_frames, "rb_profile_frames") &&
            load(t.frame_path, "rb_profile_frame_path") &&
            load(t.frame_label, "rb_profile_frame_label") && load(t.during_gc, "rb_during_gc") &&
            load(t.gc_count, "rb_gc_count") && load(t.vm_ptr, "ruby_current_vm_ptr") &&
            load(version, "ruby_api_version") && rb::layout_matches(version) &&
            dlsym(RTLD_DEFAULT, "ruby_current_ec") != nullptr;
  if (ok) table = t;
  state.store(ok ? 2 : 1, std::memory_order_release);
  return ok ? &table : nullptr;
}

// This thread's slot of libruby's thread-local `ruby_current_ec`: dlsym of a
// TLS symbol answers the calling thread's copy, so it is looked up once per
// thread. The slot holds null on a thread Ruby never ran on (a thread a C
// library started), where rb_profile_frames would dereference null.
void* const* current_ec_slot() {
  static thread_local void* const* t_slot __attribute__((tls_model("initial-exec"))) = nullptr;
  if (!t_slot) {
    Reentry guard;
    t_slot = static_cast<void* const*>(dlsym(RTLD_DEFAULT, "ruby_current_ec"));
  }
  return t_slot;
}

// Names copied out of Ruby's strings before the GC check decides whether
// they may be used; longer names are cut.
constexpr std::size_t kMaxFile = 1024;
constexpr std::size_t kMaxFunction = 256;
constexpr std::size_t kArena = 8192;

struct CopiedFrame {
  std::size_t file_at, file_len, function_at, function_len;
  int line;
};

}  // namespace

bool ruby_present() {
  return api() != nullptr;
}

StackId capture_ruby_stack(int depth) {
  const RubyApi* rb = api();
  if (!rb || depth <= 0) return 0;
  if (depth > static_cast<int>(kMaxFrames)) depth = kMaxFrames;
  if (__atomic_load_n(rb->vm_ptr, __ATOMIC_ACQUIRE) == nullptr) return 0;
  void* const* ec_slot = current_ec_slot();
  if (!ec_slot || !*ec_slot) return 0;
  if (rb->during_gc()) return 0;
  const std::size_t collections = rb->gc_count();

  std::uintptr_t values[kMaxFrames];
  int lines[kMaxFrames];
  const int n = rb->profile_frames(0, depth, values, lines);
  char arena[kArena];
  std::size_t used = 0;
  CopiedFrame copied[kMaxFrames];
  int kept = 0;
  auto copy = [&](std::string_view text, std::size_t cap, std::size_t* at, std::size_t* len) {
    if (text.size() > cap) text = text.substr(0, cap);
    if (used + text.size() > kArena) return false;
    std::memcpy(arena + used, text.data(), text.size());
    *at = used;
    *len = text.size();
    used += text.size();
    return true;
  };
  for (int i = 0; i < n; ++i) {
    // Anything else than an iseq or a method entry (a moved object) would
    // make rb_profile_frame_* abort the process.
    if (!rb::is_imemo(values[i])) continue;
    // Ruby 3.1 also reports methods written in C (PG::Connection.connect_start
    // ...): they have no path or label, and naming them (rb_id2str) may take
    // the VM lock; the native stack shows them. A frame without a line is the
    // VM's dummy frame under <main>.
    std::string_view file, function;
    if (!rb::string_bytes(rb->frame_path(values[i]), &file) || lines[i] <= 0) continue;
    if (!rb::string_bytes(rb->frame_label(values[i]), &function)) function = {};
    CopiedFrame& f = copied[kept];
    if (!copy(file, kMaxFile, &f.file_at, &f.file_len) ||
        !copy(function, kMaxFunction, &f.function_at, &f.function_len))
      break;  // the outermost frames are dropped when the arena is full
    f.line = lines[i];
    ++kept;
  }
  // A collection that ran during the read may have moved what we read. The
  // fence keeps the copies above before the re-check (a seqlock's reader).
  std::atomic_thread_fence(std::memory_order_acquire);
  if (rb->during_gc() || rb->gc_count() != collections) return 0;

  std::uintptr_t frames[kMaxFrames];
  for (int i = 0; i < kept; ++i) {
    const CopiedFrame& f = copied[i];
    frames[i] = reinterpret_cast<std::uintptr_t>(
        intern_script_frame(std::string_view(arena + f.file_at, f.file_len),
                            std::string_view(arena + f.function_at, f.function_len), f.line));
  }
  return kept ? script_depot().intern(frames, static_cast<std::size_t>(kept)) : 0;
}

}  // namespace connleak::shim
