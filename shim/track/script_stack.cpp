#include "shim/track/script_stack.h"

#include <atomic>

#include "shim/php/php_stack.h"
#include "shim/python/python_stack.h"
#include "shim/ruby/ruby_stack.h"

namespace connleak::shim {

namespace {

// One row per interpreter; a process hosts one of them at most in practice,
// and the first present one wins.
constexpr ScriptRuntime kRuntimes[] = {
    {ScriptLanguage::kPython, python_present, capture_python_stack},
    {ScriptLanguage::kRuby, ruby_present, capture_ruby_stack},
    {ScriptLanguage::kPhp, php_present, capture_php_stack},
};

// The runtime found, once: later captures go straight to it.
std::atomic<const ScriptRuntime*> g_host{nullptr};

const ScriptRuntime* host() {
  if (const ScriptRuntime* found = g_host.load(std::memory_order_acquire)) return found;
  for (const ScriptRuntime& runtime : kRuntimes) {
    if (!runtime.present()) continue;
    set_script_host(runtime.language);
    g_host.store(&runtime, std::memory_order_release);
    return &runtime;
  }
  return nullptr;
}

}  // namespace

StackId capture_script_stack(int depth) {
  const ScriptRuntime* runtime = host();
  return runtime ? runtime->capture(depth) : 0;
}

}  // namespace connleak::shim
