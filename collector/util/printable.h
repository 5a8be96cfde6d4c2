#pragma once
// Report strings come from the host: argv, module paths, function names,
// dbname/user/host. They may hold any byte (a Latin-1 argv, a crafted symbol
// name), and neither a JSON serializer nor a terminal may be trusted with them.
#include <string>
#include <string_view>

namespace connleak {

// `text` as valid UTF-8: every byte that does not start a well-formed sequence
// (overlong forms, surrogates and code points above U+10FFFF included) becomes
// U+FFFD, as nlohmann's error_handler_t::replace does when writing. Lets the
// report reader accept files written by other tools or older versions.
std::string valid_utf8(std::string_view text);

// `text` safe to print on a terminal, on one line: C0 controls, DEL and C1
// controls (U+0080..U+009F, which some terminals read as CSI/OSC) become
// \n, \t, \r, \e or \xNN escapes; bytes that are not valid UTF-8 become \xNN.
// A backslash stays as is, so ordinary Windows paths read naturally.
std::string printable(std::string_view text);

}  // namespace connleak
