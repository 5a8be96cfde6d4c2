#include "shim/php/php_stack.h"

#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "collector/core/script_frames.h"
#include "collector/util/logger.h"
#include "shim/runtime/guard.h"

// Last: PHP's headers define macros over common names. Only the engine's
// layouts are used (struct offsets, constants); no PHP symbol is referenced,
// so nothing of PHP is linked (the shim links with --no-undefined).
#include <Zend/zend.h>
#include <Zend/zend_compile.h>
#include <Zend/zend_globals.h>

namespace connleak::shim {

namespace {

#ifndef ZTS

// Frames followed per capture, kept or not (NULL-func frames are skipped).
constexpr int kMaxWalk = 4 * static_cast<int>(kMaxFrames);
constexpr std::size_t kMaxName = 256;
constexpr std::size_t kMaxFile = 1024;

using VersionFn = const char* (*)();

struct PhpSymbols {
  const zend_executor_globals* eg = nullptr;
  VersionFn version = nullptr;
};

// Looked up once in the global scope, where a php executable (or a libphp
// loaded RTLD_GLOBAL) exports both. A ZTS build exports no executor_globals
// (its globals are per thread, behind TSRM): not PHP as far as we know.
const PhpSymbols* symbols() {
  static std::atomic<int> state{0};  // 0 unknown, 1 absent, 2 present
  static PhpSymbols table;
  int s = state.load(std::memory_order_acquire);
  if (s != 0) return s == 2 ? &table : nullptr;
  Reentry guard;
  PhpSymbols t;
  t.eg = static_cast<const zend_executor_globals*>(dlsym(RTLD_DEFAULT, "executor_globals"));
  t.version = reinterpret_cast<VersionFn>(dlsym(RTLD_DEFAULT, "get_zend_version"));
  bool ok = t.eg && t.version;
  if (ok) table = t;  // racing first calls store the same values
  state.store(ok ? 2 : 1, std::memory_order_release);
  return ok ? &table : nullptr;
}

// The layouts read below are those of the headers we were compiled against,
// ZEND_VERSION "X.Y.Z"; they hold for every X.Y.* (an engine minor version is
// one PHP minor version, one ZEND_MODULE_API_NO). get_zend_version() returns
// "Zend Engine vX.Y.Z, Copyright ..." (a string built at startup; the
// function only loads its pointer).
bool same_engine(const char* running) {
  constexpr std::string_view kPrefix = "Zend Engine v";
  std::string_view built(ZEND_VERSION);
  built = built.substr(0, built.rfind('.') + 1);  // "X.Y."
  std::string_view r(running);
  return r.starts_with(kPrefix) && r.substr(kPrefix.size()).starts_with(built);
}

// 0 unknown (the engine has not started: no version string yet), 1 another
// engine version (said once, then no frames), 2 ours.
std::atomic<int> g_engine{0};

bool engine_matches(const PhpSymbols& php) {
  int e = g_engine.load(std::memory_order_acquire);
  if (e != 0) return e == 2;
  const char* running = php.version();
  if (!running) return false;
  bool ok = same_engine(running);
  int expected = 0;
  if (g_engine.compare_exchange_strong(expected, ok ? 2 : 1) && !ok) {
    std::string_view r(running);
    r = r.substr(0, r.find_first_of(",\n"));
    log().warn("connleak: no PHP stacks: this PHP runs {}, connleak was built for Zend Engine v{}",
               r, ZEND_VERSION);
  }
  return ok;
}

// A non-ZTS engine runs scripts in one thread, the process's main thread
// (php-cli, php-fpm, mod_php prefork, the embed SAPI). A connection made by
// another thread (an extension's own) must not read the executor while the
// main thread changes it.
// Asked once per thread (two system calls cost ~1.2 us here, more than the
// walk): initial-exec TLS, no allocation. A fork keeps the answer of the
// forking thread, which is the child's main thread: a "yes" stays true; a
// "no" from a forking non-main thread only costs that child its PHP frames.
bool on_php_thread() {
  static thread_local signed char t_main __attribute__((tls_model("initial-exec"))) = -1;
  if (t_main < 0) t_main = static_cast<pid_t>(syscall(SYS_gettid)) == getpid() ? 1 : 0;
  return t_main == 1;
}

std::string_view zstr(const zend_string* s, std::size_t cap) {
  if (!s) return {};
  std::size_t len = ZSTR_LEN(s);
  return std::string_view(ZSTR_VAL(s), len < cap ? len : cap);
}

bool user_code(const zend_function* f) {
  return f->type == ZEND_USER_FUNCTION || f->type == ZEND_EVAL_CODE;
}

// The line a user frame is at: its current opline's, when that opline lies in
// the frame's own opcodes (a frame that has not run an opline yet, or a JIT
// that left it stale, gets the function's first line instead).
int user_line(const zend_execute_data* ex) {
  const zend_op_array& op = ex->func->op_array;
  const zend_op* at = ex->opline;
  if (at && op.opcodes && at >= op.opcodes && at < op.opcodes + op.last)
    return static_cast<int>(at->lineno);
  return static_cast<int>(op.line_start);
}

// "Class::method", "function", or for a file's top level "{main}" (the
// outermost), "{eval}" or "{include}", as PHP's own traces name them.
std::string_view function_name(const zend_function* f, bool outermost, char* buf) {
  std::string_view name = zstr(f->common.function_name, kMaxName);
  if (name.empty() && user_code(f)) {
    if (outermost) return "{main}";
    return f->type == ZEND_EVAL_CODE ? "{eval}" : "{include}";
  }
  const zend_class_entry* scope = f->common.scope;
  std::string_view cls = scope ? zstr(scope->name, kMaxName) : std::string_view();
  if (cls.empty()) return name;
  std::size_t n = 0;
  std::memcpy(buf, cls.data(), cls.size());
  n += cls.size();
  std::memcpy(buf + n, "::", 2);
  n += 2;
  std::memcpy(buf + n, name.data(), name.size());
  n += name.size();
  return std::string_view(buf, n);
}

#endif  // ZTS

}  // namespace

#ifndef ZTS

bool php_present() {
  return symbols() != nullptr;
}

StackId capture_php_stack(int depth) {
  const PhpSymbols* php = symbols();
  if (!php || depth <= 0) return 0;
  if (depth > static_cast<int>(kMaxFrames)) depth = static_cast<int>(kMaxFrames);
  if (!on_php_thread() || !engine_matches(*php)) return 0;
  const zend_executor_globals& eg = *php->eg;
  // Before the executor starts and once it shuts down (the request's objects
  // and resources are being freed: runtime_exit closes) there is no script
  // stack to speak of, and its structures are being torn down.
  if (!eg.active || (eg.flags & EG_FLAGS_IN_SHUTDOWN) != 0) return 0;
  const zend_execute_data* chain[kMaxWalk];
  int n = 0;
  for (const zend_execute_data* ex = eg.current_execute_data; ex && n < kMaxWalk;
       ex = ex->prev_execute_data)
    if (ex->func) chain[n++] = ex;
  if (n == 0) return 0;
  // Per frame, the user frame that gives its file and line (itself, or for
  // an internal function such as pg_connect or mysqli::__construct the user
  // frame that called it), and whether any user frame is further out.
  int site[kMaxWalk];
  bool outermost[kMaxWalk];
  for (int i = n - 1, next_user = -1; i >= 0; --i) {
    outermost[i] = next_user < 0;
    if (user_code(chain[i]->func)) next_user = i;
    site[i] = next_user;
  }
  Reentry guard;
  std::uintptr_t frames[kMaxFrames];
  int kept = 0;
  char name_buf[2 * kMaxName + 2];
  for (int i = 0; i < n && kept < depth; ++i) {
    const zend_function* f = chain[i]->func;
    const zend_execute_data* at = site[i] >= 0 ? chain[site[i]] : nullptr;
    std::string_view file = at ? zstr(at->func->op_array.filename, kMaxFile) : "";
    int line = at ? user_line(at) : 0;
    std::string_view function = function_name(f, outermost[i], name_buf);
    if (const ScriptFrame* frame = intern_script_frame(file, function, line))
      frames[kept++] = reinterpret_cast<std::uintptr_t>(frame);
  }
  return script_depot().intern(frames, static_cast<std::size_t>(kept));
}

#else  // A ZTS engine's globals live behind TSRM: not read (README).

bool php_present() {
  return false;
}

StackId capture_php_stack(int) {
  return 0;
}

#endif

}  // namespace connleak::shim
