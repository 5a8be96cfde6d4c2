#include "collector/activity/normalize.h"

#include <cstdint>

namespace connleak::activity {

namespace {

constexpr std::string_view kEllipsis = "\xe2\x80\xa6";  // U+2026

bool is_space(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}
bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(unsigned char c) {
  return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}
bool ident_start(unsigned char c) {
  return is_alpha(c) || c == '_' || c >= 0x80;
}
bool ident_char(unsigned char c) {
  return ident_start(c) || is_digit(c) || c == '$';
}
bool is_continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Length of the valid UTF-8 sequence at s[i]; 0 if invalid, -1 if the text
// ends inside it.
int utf8_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  int len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return -1;
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : !is_continuation(b)) return 0;
  }
  return len;
}

class Scanner {
 public:
  Scanner(std::string_view sql, Dialect dialect, bool cut, bool plain_backslash)
      : s_(sql), dialect_(dialect), cut_(cut), plain_backslash_(plain_backslash) {}

  // False: the text cannot be tokenized.
  bool run();
  const std::string& out() const { return out_; }
  bool full() const { return full_; }
  // A plain string held a backslash: its end depends on a server setting.
  bool ambiguous() const { return ambiguous_; }

 private:
  enum class Step { kOk, kFail, kEnd };  // kEnd: the (cut) text ended inside a token

  void emit(std::string_view piece);
  void emit_text(std::size_t from, std::size_t to);  // identifier text, UTF-8 checked
  // `plain`: an ordinary string, whose escapes depend on the server setting.
  Step string_literal(char quote, bool backslash, bool plain = true);
  Step quoted_identifier(char quote);
  Step dollar(bool& handled);
  Step block_comment();
  void line_comment();
  void number();
  Step word();

  std::string_view s_;
  Dialect dialect_;
  bool cut_;
  bool plain_backslash_;
  std::size_t i_ = 0;
  std::string out_;
  std::size_t chars_ = 0;
  bool space_ = false;
  bool full_ = false;
  bool ambiguous_ = false;
};

void Scanner::emit(std::string_view piece) {
  if (full_) return;
  if (space_ && !out_.empty()) {
    space_ = false;
    emit(" ");
  }
  space_ = false;
  for (char ch : piece) {
    if (!is_continuation(static_cast<unsigned char>(ch))) {
      // One past the limit marks the result as shortened; the ellipsis goes
      // in at the end, after trimming back to a code point boundary.
      if (chars_ == kMaxNormalizedChars) {
        full_ = true;
        return;
      }
      ++chars_;
    }
    out_.push_back(ch);
  }
}

void Scanner::emit_text(std::size_t from, std::size_t to) {
  std::size_t i = from;
  while (i < to && !full_) {
    const auto c = static_cast<unsigned char>(s_[i]);
    if (c < 0x20 || c == 0x7F) {
      emit("?");
      ++i;
      continue;
    }
    int len = utf8_length(s_.substr(0, to), i);
    if (len < 0) return;  // a code point cut off by the bounded copy: dropped
    if (len == 0) {
      emit("?");
      ++i;
      continue;
    }
    emit(s_.substr(i, static_cast<std::size_t>(len)));
    i += static_cast<std::size_t>(len);
  }
}

Scanner::Step Scanner::string_literal(char quote, bool backslash, bool plain) {
  std::size_t j = i_ + 1;
  const std::size_t n = s_.size();
  while (j < n) {
    const char c = s_[j];
    if (c == '\\') {
      ambiguous_ = ambiguous_ || plain;
      if (backslash) {
        j += 2;
        continue;
      }
    }
    if (c == quote) {
      if (j + 1 < n && s_[j + 1] == quote) {
        j += 2;
        continue;
      }
      i_ = j + 1;
      emit("?");
      return Step::kOk;
    }
    ++j;
  }
  if (!cut_) return Step::kFail;
  emit("?");
  return Step::kEnd;
}

Scanner::Step Scanner::quoted_identifier(char quote) {
  std::size_t j = i_ + 1;
  const std::size_t n = s_.size();
  while (j < n) {
    if (s_[j] == quote) {
      if (j + 1 < n && s_[j + 1] == quote) {
        j += 2;
        continue;
      }
      emit(std::string_view(&quote, 1));
      emit_text(i_ + 1, j);
      emit(std::string_view(&quote, 1));
      i_ = j + 1;
      return Step::kOk;
    }
    ++j;
  }
  if (!cut_) return Step::kFail;
  emit(std::string_view(&quote, 1));
  emit_text(i_ + 1, n);
  return Step::kEnd;
}

// PostgreSQL `$1` parameters and `$tag$ ... $tag$` strings. The body ends at
// the first copy of the opening tag: inner tags with other names are text.
Scanner::Step Scanner::dollar(bool& handled) {
  handled = true;
  const std::size_t n = s_.size();
  std::size_t j = i_ + 1;
  if (j < n && is_digit(static_cast<unsigned char>(s_[j]))) {
    while (j < n && is_digit(static_cast<unsigned char>(s_[j]))) ++j;
    emit(s_.substr(i_, j - i_));
    i_ = j;
    return Step::kOk;
  }
  if (j < n && ident_start(static_cast<unsigned char>(s_[j]))) {
    while (j < n && s_[j] != '$' && (ident_char(static_cast<unsigned char>(s_[j])))) ++j;
  }
  if (j >= n) {
    if (!cut_) {
      handled = false;  // a lone `$` or `$name` at the end: an operator and a word
      return Step::kOk;
    }
    emit("?");  // maybe a tag cut in half: nothing after it can be trusted
    return Step::kEnd;
  }
  if (s_[j] != '$') {
    handled = false;
    return Step::kOk;
  }
  const std::string_view tag = s_.substr(i_, j - i_ + 1);
  const std::size_t end = s_.find(tag, j + 1);
  if (end == std::string_view::npos) {
    if (!cut_) return Step::kFail;
    emit("?");
    return Step::kEnd;
  }
  emit("?");
  i_ = end + tag.size();
  return Step::kOk;
}

Scanner::Step Scanner::block_comment() {
  const std::size_t n = s_.size();
  std::size_t j = i_ + 2;
  int depth = 1;
  while (j < n) {
    if (s_[j] == '*' && j + 1 < n && s_[j + 1] == '/') {
      j += 2;
      if (--depth == 0) {
        i_ = j;
        space_ = true;
        return Step::kOk;
      }
    } else if (dialect_ == Dialect::kPostgres && s_[j] == '/' && j + 1 < n && s_[j + 1] == '*') {
      j += 2;
      ++depth;  // PostgreSQL comments nest; MySQL's do not
    } else {
      ++j;
    }
  }
  return cut_ ? Step::kEnd : Step::kFail;
}

void Scanner::line_comment() {
  while (i_ < s_.size() && s_[i_] != '\n') ++i_;
  space_ = true;
}

// Digits, decimals, exponents, 0x / 0b forms and PostgreSQL 16's `1_000`.
void Scanner::number() {
  const std::size_t n = s_.size();
  while (i_ < n) {
    const auto c = static_cast<unsigned char>(s_[i_]);
    if (is_digit(c) || is_alpha(c) || c == '_' || c == '.') {
      ++i_;
      if ((c == 'e' || c == 'E') && i_ + 1 < n && (s_[i_] == '+' || s_[i_] == '-') &&
          is_digit(static_cast<unsigned char>(s_[i_ + 1])))
        ++i_;
      continue;
    }
    break;
  }
  emit("?");
}

Scanner::Step Scanner::word() {
  const std::size_t n = s_.size();
  const std::size_t start = i_;
  while (i_ < n && ident_char(static_cast<unsigned char>(s_[i_]))) ++i_;
  const std::string_view w = s_.substr(start, i_ - start);
  const char next = i_ < n ? s_[i_] : '\0';
  // Typed literals: E'..' (backslash escapes), X'..', B'..', N'..', U&'..'.
  if (w.size() == 1 && next == '\'') {
    const char p = static_cast<char>(w[0] | 0x20);
    if (p == 'e' && dialect_ == Dialect::kPostgres) return string_literal('\'', true, false);
    if (p == 'x' || p == 'b') return string_literal('\'', false, false);
    if (p == 'n') return string_literal('\'', plain_backslash_);
  }
  if (w.size() == 1 && (w[0] | 0x20) == 'u' && next == '&' && i_ + 1 < n && s_[i_ + 1] == '\'') {
    ++i_;
    return string_literal('\'', false, false);
  }
  emit_text(start, i_);
  return Step::kOk;
}

bool Scanner::run() {
  const std::size_t n = s_.size();
  while (i_ < n && !full_) {
    const auto c = static_cast<unsigned char>(s_[i_]);
    const char next = i_ + 1 < n ? s_[i_ + 1] : '\0';
    Step step = Step::kOk;
    if (is_space(c) || c < 0x20 || c == 0x7F) {
      space_ = true;
      ++i_;
    } else if ((c == '-' && next == '-') || (c == '#' && dialect_ == Dialect::kMysql)) {
      line_comment();
    } else if (c == '/' && next == '*') {
      step = block_comment();
    } else if (c == '\'') {
      step = string_literal('\'', plain_backslash_);
    } else if (c == '"') {
      // MySQL (without ANSI_QUOTES): a string; PostgreSQL: an identifier.
      step = dialect_ == Dialect::kMysql ? string_literal('"', plain_backslash_)
                                         : quoted_identifier('"');
    } else if (c == '`' && dialect_ == Dialect::kMysql) {
      step = quoted_identifier('`');
    } else if (c == '$' && dialect_ == Dialect::kPostgres) {
      bool handled = false;
      step = dollar(handled);
      if (!handled) {
        emit("$");
        ++i_;
      }
    } else if (is_digit(c) || (c == '.' && is_digit(static_cast<unsigned char>(next)))) {
      number();
    } else if (ident_start(c)) {
      step = word();
    } else {
      emit(s_.substr(i_, 1));
      ++i_;
    }
    if (step == Step::kFail) return false;
    if (step == Step::kEnd) break;
  }
  return true;
}

std::string finish(std::string out, bool shortened) {
  if (!shortened) return out;
  std::size_t chars = 0;
  for (char ch : out) chars += !is_continuation(static_cast<unsigned char>(ch));
  while (chars > kMaxNormalizedChars - 1) {
    while (!out.empty() && is_continuation(static_cast<unsigned char>(out.back()))) out.pop_back();
    if (!out.empty()) out.pop_back();
    --chars;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  out += kEllipsis;
  return out;
}

}  // namespace

std::string first_keyword_only(std::string_view sql) {
  std::size_t i = 0;
  const std::size_t n = sql.size();
  // Leading blanks and comments only; anything else ends the search.
  for (;;) {
    while (i < n && is_space(static_cast<unsigned char>(sql[i]))) ++i;
    if (i + 1 < n && sql[i] == '-' && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n') ++i;
    } else if (i + 1 < n && sql[i] == '/' && sql[i + 1] == '*') {
      std::size_t end = sql.find("*/", i + 2);
      if (end == std::string_view::npos) return std::string(kEllipsis);
      i = end + 2;
    } else {
      break;
    }
  }
  std::string kw;
  while (i < n && is_alpha(static_cast<unsigned char>(sql[i])) && kw.size() < 32)
    kw.push_back(static_cast<char>(sql[i++] & ~0x20));
  if (kw.empty()) return std::string(kEllipsis);
  return kw + " " + std::string(kEllipsis);
}

std::string normalize_sql(std::string_view sql, Dialect dialect, bool cut) {
  // PostgreSQL's default (standard_conforming_strings on): '\' is plain text;
  // MySQL's default: '\' escapes. The other reading is tried when it matters.
  const bool usual = dialect == Dialect::kMysql;
  Scanner a(sql, dialect, cut, usual);
  const bool a_ok = a.run();
  if (!a.ambiguous()) return a_ok ? finish(a.out(), a.full() || cut) : first_keyword_only(sql);
  Scanner b(sql, dialect, cut, !usual);
  const bool b_ok = b.run();
  if (a_ok && b_ok) {
    if (a.out() == b.out()) return finish(a.out(), a.full() || cut);
    return first_keyword_only(sql);
  }
  if (a_ok) return finish(a.out(), a.full() || cut);
  if (b_ok) return finish(b.out(), b.full() || cut);
  return first_keyword_only(sql);
}

}  // namespace connleak::activity
