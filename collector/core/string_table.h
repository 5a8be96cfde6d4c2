#pragma once
// Interns short strings that repeat across records (targets, module paths), so a
// record holds one pointer and 10,000 connections to one database cost one copy.
// Interned strings are never freed: pointers stay valid for reports at exit.
#include <mutex>
#include <string_view>
#include <vector>

namespace connleak {

const char* intern_string(std::string_view text);

}  // namespace connleak
