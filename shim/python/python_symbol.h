#pragma once
// The CPython C API is found at run time, never linked: a python3 executable
// exports it in the global scope (an interpreter embedded through a
// dlopen(RTLD_LOCAL)ed libpython is not found). Shared by the stack capture
// (python_stack.cpp) and the asyncio awaiter chain (python_async.cpp).
#include <dlfcn.h>

namespace connleak::shim::py {

template <typename T>
bool load(T& slot, const char* name) {
  slot = reinterpret_cast<T>(dlsym(RTLD_DEFAULT, name));
  return slot != nullptr;
}

}  // namespace connleak::shim::py
