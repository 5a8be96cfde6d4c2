#include "collector/util/text_util.h"

#include <cstdio>

namespace connleak {

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string report_file_name(pid_t pid, unsigned dump_number) {
  std::string name = "connleak." + std::to_string(pid);
  if (dump_number) name += "." + std::to_string(dump_number);
  return name + ".json";
}

std::string control_socket_name(pid_t pid) {
  return "connleak." + std::to_string(pid);
}

}  // namespace connleak
