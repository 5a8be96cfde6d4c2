#pragma once
// Interns short strings that repeat across records (targets, module paths), so a
// record holds one pointer and 10,000 connections to one database cost one copy.
// Interned strings are never freed: pointers stay valid for reports at exit.
#include <mutex>
#include <string_view>
#include <vector>

namespace connleak {

const char* intern_string(std::string_view text);
// fork(): the shim takes this lock before fork and re-creates it in the child.
void string_table_collect_mutexes(std::vector<std::mutex*>& out);

}  // namespace connleak
