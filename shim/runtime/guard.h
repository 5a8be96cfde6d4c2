#pragma once
// Thread-local re-entrancy guard: while the shim does its own work (writing a
// report, resolving symbols, symbolizing), hooks it reaches again must pass
// straight through. initial-exec TLS: no allocation or lock on first access,
// which matters for hooks that run before the shim's constructors.
namespace connleak::shim {

inline thread_local int t_depth __attribute__((tls_model("initial-exec"))) = 0;

inline bool in_shim() {
  return t_depth != 0;
}

class Reentry {
 public:
  Reentry() { ++t_depth; }
  ~Reentry() { --t_depth; }
  Reentry(const Reentry&) = delete;
  Reentry& operator=(const Reentry&) = delete;
};

}  // namespace connleak::shim
