#include "collector/report/format/json_fields.h"

#include <algorithm>
#include <cstring>

namespace connleak {

namespace {

// What the JSON report writes everywhere else (report_json.cpp's dump()).
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Printable ASCII other than '"' and '\\': nlohmann writes such a string as
// it is, between quotes. Anything else (escapes, UTF-8, invalid bytes) is
// left to nlohmann.
bool plain(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  if (!plain(text)) {
    out += dump(nlohmann::json(text));
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

JsonFields::Slot& JsonFields::Slot::set(std::string_view json_text) {
  Field& f = to_.fields_[field_];
  f.begin = to_.values_.size();
  to_.values_ += json_text;
  f.end = to_.values_.size();
  return *this;
}

JsonFields::Slot& JsonFields::Slot::operator=(double value) {
  return set(dump(nlohmann::json(value)));  // nlohmann's own shortest round-trip form
}

JsonFields::Slot& JsonFields::Slot::operator=(std::string_view value) {
  Field& f = to_.fields_[field_];
  f.begin = to_.values_.size();
  append_json_string(to_.values_, value);
  f.end = to_.values_.size();
  return *this;
}

JsonFields::Slot& JsonFields::Slot::operator=(const nlohmann::json& value) {
  if (value.is_null()) return set("null");
  if (value.is_string()) return *this = std::string_view(value.get_ref<const std::string&>());
  if (value.is_number_unsigned()) return set(std::to_string(value.get<std::uint64_t>()));
  if (value.is_number_integer()) return set(std::to_string(value.get<std::int64_t>()));
  if (value.is_array() && value.empty()) return set("[]");
  return set(dump(value));
}

JsonFields::Slot JsonFields::operator[](const char* key) {
  fields_.push_back({key, 0, 0, fields_.size()});
  return Slot(*this, fields_.size() - 1);
}

std::string JsonFields::text() const {
  std::vector<const Field*> sorted;
  sorted.reserve(fields_.size());
  for (const Field& f : fields_) sorted.push_back(&f);
  // nlohmann's object is a std::map<std::string, ...>: bytewise key order;
  // of one key assigned twice, the later value.
  std::sort(sorted.begin(), sorted.end(), [](const Field* a, const Field* b) {
    const int by_key = std::strcmp(a->key, b->key);
    return by_key != 0 ? by_key < 0 : a->order < b->order;
  });
  std::string out;
  out.reserve(values_.size() + fields_.size() * 24 + 2);
  out += '{';
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const Field& f = *sorted[i];
    if (i + 1 < sorted.size() && std::strcmp(f.key, sorted[i + 1]->key) == 0) continue;
    if (out.size() > 1) out += ',';
    out += '"';
    out += f.key;
    out += "\":";
    out.append(values_, f.begin, f.end - f.begin);
  }
  out += '}';
  return out;
}

}  // namespace connleak
