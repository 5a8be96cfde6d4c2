#include "collector/report/dump_reply.h"

#include <nlohmann/json.hpp>

namespace connleak {

namespace {

constexpr const char* kFile = "file ";
constexpr const char* kNoFile = "no-file ";

std::string quoted(const std::string& text) {
  // The path is the host's bytes: never throw on invalid UTF-8 (type_error 316).
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

std::string dump_file_line(const std::string& file, const std::string& no_file) {
  if (!file.empty()) return kFile + quoted(file) + "\n";
  return kNoFile + quoted(no_file) + "\n";
}

DumpReply split_dump_reply(const std::string& reply) {
  DumpReply out;
  const bool is_file = starts_with(reply, kFile);
  if (!is_file && !starts_with(reply, kNoFile)) {
    out.report = reply;
    return out;
  }
  const std::size_t end = reply.find('\n');
  const std::size_t start = std::string(is_file ? kFile : kNoFile).size();
  if (end == std::string::npos) {
    out.report = reply;
    return out;
  }
  nlohmann::json text =
      nlohmann::json::parse(reply.substr(start, end - start), nullptr, /*allow_exceptions=*/false);
  if (!text.is_string()) {
    out.report = reply;
    return out;
  }
  (is_file ? out.file : out.no_file) = text.get<std::string>();
  out.report = reply.substr(end + 1);
  return out;
}

}  // namespace connleak
