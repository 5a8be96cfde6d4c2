#pragma once
// One flat JSON object written straight to text, byte for byte as
// nlohmann::json would dump it (keys sorted, no spaces, invalid UTF-8
// replaced): the JSON report writes 10,000 connections' fields through it,
// where building each as a DOM (a std::map node and a copy per field) was
// most of the report's time. Filled through the same template code as the
// DOM (`j["key"] = value`), so the two cannot drift apart; a value that is not
// a scalar or a string (an array, an object) is dumped by nlohmann itself.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "collector/report/report_enums.h"

namespace connleak {

class JsonFields {
 public:
  JsonFields() { fields_.reserve(32); }

  class Slot {
   public:
    Slot(JsonFields& to, std::size_t field) : to_(to), field_(field) {}
    template <std::integral T>
    Slot& operator=(T value) {
      if constexpr (std::is_same_v<T, bool>)
        return set(value ? "true" : "false");
      else
        return set(std::to_string(value));
    }
    Slot& operator=(double value);
    Slot& operator=(std::string_view value);
    Slot& operator=(const std::string& value) { return *this = std::string_view(value); }
    Slot& operator=(const char* value) { return *this = std::string_view(value); }
    template <typename E>
    Slot& operator=(const Named<E>& value) {
      return *this = value.name();
    }
    Slot& operator=(const nlohmann::json& value);

   private:
    Slot& set(std::string_view json_text);
    JsonFields& to_;
    std::size_t field_;
  };

  // The value of `key` (a string literal naming a field, plain ASCII: it is
  // written as it is); assigning a key again replaces its value.
  Slot operator[](const char* key);
  // "{...}" with the keys in nlohmann::json's order.
  std::string text() const;
  // Empty again, keeping the memory for the next object.
  void clear() {
    fields_.clear();
    values_.clear();
  }

 private:
  struct Field {
    const char* key;
    std::size_t begin, end;  // the value's JSON text in values_
    std::size_t order;       // the later of two fields with one key wins
  };
  std::vector<Field> fields_;
  std::string values_;  // every value's text, one after the other
};

// `text` as a JSON string ("..." with its escapes), as nlohmann::json dumps it.
void append_json_string(std::string& out, std::string_view text);

}  // namespace connleak
