// dlclose: after an object is unloaded its address range can be reused by
// another object, so cached real-function lookups keyed by that range retire.
// dlopen with RTLD_DEEPBIND (dlopen_hook.S routes only those here): the
// objects it loads are pointed at the hooks (got_patch.h).
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "shim/hooks/got_patch.h"
#include "shim/hooks/libc_real.h"
#include "shim/hooks/real_symbol.h"
#include "shim/runtime/export.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"

namespace connleak::shim {
DlcloseFn real_dlclose() {
  // One lookup for the hook and for the shim's own closes (real_symbol.cpp).
  return CONNLEAK_LIBC_REAL(dlclose);
}
}  // namespace connleak::shim

CONNLEAK_EXPORT int dlclose(void* handle) {
  connleak::shim::DlcloseFn real = connleak::shim::real_dlclose();
  if (!real) return -1;
  int rc = real(handle);
  if (rc == 0 && !connleak::shim::in_shim()) {
    connleak::shim::Reentry guard;
    connleak::shim::retire_unloaded_objects();
  }
  return rc;
}

using DlopenFn = void* (*)(const char*, int);

namespace {

// glibc would search a bare file name with the CALLER's RPATH/RUNPATH; the
// real dlopen called from here sees the shim as its caller, so the caller's
// own directories (LD_LIBRARY_PATH, RPATH, RUNPATH, in the loader's order)
// are tried first, by full path. An object already loaded under that name is
// what the loader returns before any search: it is asked for first.
void* open_as_caller(DlopenFn real, const char* file, int mode, const void* caller) {
  if (std::strchr(file, '/')) return real(file, mode);
  if (void* loaded = real(file, RTLD_LAZY | RTLD_NOLOAD)) {
    connleak::shim::real_dlclose()(loaded);
    return real(file, mode);
  }
  Dl_info info{};
  link_map* lm = nullptr;
  Dl_serinfo size{};
  if (dladdr1(caller, &info, reinterpret_cast<void**>(&lm), RTLD_DL_LINKMAP) && lm &&
      dlinfo(lm, RTLD_DI_SERINFOSIZE, &size) == 0) {
    std::vector<char> buf(size.dls_size);
    auto* paths = reinterpret_cast<Dl_serinfo*>(buf.data());
    *paths = size;
    if (dlinfo(lm, RTLD_DI_SERINFO, paths) == 0) {
      for (unsigned i = 0; i < paths->dls_cnt; ++i) {
        const Dl_serpath& dir = paths->dls_serpath[i];
        if (!(dir.dls_flags & (LA_SER_LIBPATH | LA_SER_RUNPATH)) || !dir.dls_name) continue;
        std::string path = std::string(dir.dls_name) + "/" + file;
        if (access(path.c_str(), F_OK) == 0) return real(path.c_str(), mode);
      }
    }
  }
  dlerror();  // a failed probe above is not the program's error
  return real(file, mode);
}

}  // namespace

extern "C" {
// Read by the assembly stub: glibc's dlopen.
__attribute__((visibility("hidden"))) DlopenFn connleak_real_dlopen = nullptr;

__attribute__((visibility("hidden"))) DlopenFn connleak_init_real_dlopen() {
  if (!connleak_real_dlopen) {
    void* fn = dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.34");
    if (!fn) fn = dlvsym(RTLD_NEXT, "dlopen", "GLIBC_2.2.5");
    __atomic_store_n(&connleak_real_dlopen, reinterpret_cast<DlopenFn>(fn), __ATOMIC_RELEASE);
  }
  return connleak_real_dlopen;
}

// Whether a RTLD_DEEPBIND dlopen is taken over. Not when "$ORIGIN"-style
// names need the caller's identity, nor from another link-map namespace
// (dlmopen), nor while tracking is off: then the stub's tail jump keeps
// glibc's own behaviour, and that object stays untracked.
__attribute__((visibility("hidden"))) bool connleak_dlopen_wants(const char* file, int,
                                                                 const void* caller) {
  if (!file || !file[0] || std::strchr(file, '$') || !connleak::shim::should_track()) return false;
  Dl_info info{};
  link_map* lm = nullptr;
  Lmid_t lmid = LM_ID_BASE;
  if (!dladdr1(caller, &info, reinterpret_cast<void**>(&lm), RTLD_DL_LINKMAP) || !lm ||
      dlinfo(lm, RTLD_DI_LMID, &lmid) != 0)
    return false;
  return lmid == LM_ID_BASE;
}

__attribute__((visibility("hidden"))) void* connleak_dlopen_deepbind(const char* file, int mode,
                                                                     const void* caller) {
  DlopenFn real = connleak_init_real_dlopen();
  if (!real) return nullptr;
  // The objects this call loads are the ones not there before it (a
  // concurrent ordinary dlopen's are too, and have nothing to rewrite).
  const std::vector<std::uintptr_t> before = connleak::shim::got::loaded_objects();
  void* handle = open_as_caller(real, file, mode, caller);
  if (handle) {
    connleak::shim::Reentry guard;
    connleak::shim::got::patch_new_objects(before);
  }
  return handle;
}
}
