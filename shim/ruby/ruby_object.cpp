#include "shim/ruby/ruby_object.h"

#ifdef CONNLEAK_HAVE_RUBY_HEADERS
#include <ruby.h>
#include <ruby/version.h>
#endif

namespace connleak::shim::rb {

#ifdef CONNLEAK_HAVE_RUBY_HEADERS

namespace {

// The type bits of any heap object's first word (RBasic.flags), without
// RB_TYPE_P's debug-build checks.
bool heap_object_of_type(std::uintptr_t value, int type) {
  const auto v = static_cast<VALUE>(value);
  if (RB_SPECIAL_CONST_P(v)) return false;
  return static_cast<int>(RBASIC(v)->flags & RUBY_T_MASK) == type;
}

}  // namespace

bool layout_matches(const int* running_api_version) {
  return running_api_version && running_api_version[0] == RUBY_API_VERSION_MAJOR &&
         running_api_version[1] == RUBY_API_VERSION_MINOR;
}

bool string_bytes(std::uintptr_t value, std::string_view* bytes) {
  if (!heap_object_of_type(value, RUBY_T_STRING)) return false;
  // rbimpl_rstring_getmem, not RSTRING_PTR: the latter may call a libruby
  // function (rb_debug_rstring_null_ptr) on a NULL pointer, which the shim
  // cannot link; an embedded or heap string is a flags test and two loads.
  const struct RString mem = rbimpl_rstring_getmem(static_cast<VALUE>(value));
  if (!mem.as.heap.ptr || mem.as.heap.len < 0) return false;
  *bytes = std::string_view(mem.as.heap.ptr, static_cast<std::size_t>(mem.as.heap.len));
  return true;
}

bool is_imemo(std::uintptr_t value) {
  return heap_object_of_type(value, RUBY_T_IMEMO);
}

#else

bool layout_matches(const int*) {
  return false;
}
bool string_bytes(std::uintptr_t, std::string_view*) {
  return false;
}
bool is_imemo(std::uintptr_t) {
  return false;
}

#endif

}  // namespace connleak::shim::rb
