#include "collector/util/printable.h"

#include <cstdint>
#include <cstdio>

namespace connleak {

namespace {

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629 table), or 0.
std::size_t sequence_length(std::string_view text, std::size_t i, std::uint32_t* code_point) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    *code_point = b0;
    return 1;
  }
  std::size_t len;
  std::uint32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const unsigned char b = byte(i + k);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  *code_point = cp;
  return len;
}

void append_hex(std::string& out, unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", b);
  out += buf;
}

// Walks `text` one UTF-8 sequence at a time: on_valid(i, len, code_point) for
// each well-formed sequence, on_invalid(i) for each byte that starts none.
template <typename Valid, typename Invalid>
void for_each_sequence(std::string_view text, Valid on_valid, Invalid on_invalid) {
  for (std::size_t i = 0; i < text.size();) {
    std::uint32_t cp;
    const std::size_t len = sequence_length(text, i, &cp);
    if (len == 0) {
      on_invalid(i);
      ++i;
    } else {
      on_valid(i, len, cp);
      i += len;
    }
  }
}

}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for_each_sequence(
      text, [&](std::size_t i, std::size_t len, std::uint32_t) { out.append(text.substr(i, len)); },
      [&](std::size_t) { out += "\xEF\xBF\xBD"; });
  return out;
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto hex_bytes = [&](std::size_t i, std::size_t len) {
    for (std::size_t k = 0; k < len; ++k) append_hex(out, static_cast<unsigned char>(text[i + k]));
  };
  const auto on_valid = [&](std::size_t i, std::size_t len, std::uint32_t cp) {
    if (!(cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))) {
      out.append(text.substr(i, len));
      return;
    }
    switch (cp) {
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case 0x1B:
        out += "\\e";
        break;
      default:
        // A C1 control is two bytes in UTF-8; both are shown, so the escape
        // says exactly what was in the field.
        hex_bytes(i, len);
    }
  };
  for_each_sequence(text, on_valid, [&](std::size_t i) { hex_bytes(i, 1); });
  return out;
}

}  // namespace connleak
