#pragma once
// Reads of Ruby objects' memory that never call into Ruby: the only file that
// includes <ruby.h> (its inline layout functions, never a libruby symbol: the
// shim links no Ruby and must load in any process). Built against the
// headers of ruby*-dev (pkg-config ruby-3.x); without them every read fails
// and the process gets no Ruby frames.
#include <cstdint>
#include <string_view>

namespace connleak::shim::rb {

// True when these readers were compiled against Ruby's headers of the same
// API version (major.minor) as the running libruby's `ruby_api_version`: the
// string layout they read is that release's.
bool layout_matches(const int* running_api_version);

// A live String's bytes (not NUL-terminated), without allocating, raising or
// the GVL: a layout read. False for anything that is not a heap T_STRING,
// including an object the compacting GC has just moved (T_MOVED).
bool string_bytes(std::uintptr_t value, std::string_view* bytes);

// True for a heap T_IMEMO object: what rb_profile_frames stores (an iseq or a
// method entry), checked before handing one to rb_profile_frame_*, which
// calls rb_bug() (abort) on anything else.
bool is_imemo(std::uintptr_t value);

}  // namespace connleak::shim::rb
