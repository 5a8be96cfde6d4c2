// The journal reader behind `connleak report DIR`: a journal is whatever a
// dying process left on disk, so any bytes must give either a parse or one
// error line, never a crash, and never more entries than the slot table holds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "collector/journal/journal_reader.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string error;
  auto j = connleak::journal::parse_journal(data, size, &error);
  if (!j) {
    if (error.empty() || error.find('\n') != std::string::npos)
      connleak::fuzz::fail("a rejected journal gives exactly one line", error, __FILE__, __LINE__);
    return 0;
  }
  // Each open entry comes from one whole 64-byte slot of the input.
  if (j->open.size() * 64 > size)
    connleak::fuzz::fail("no more entries than whole slots", "", __FILE__, __LINE__);
  for (const std::string& note : j->notes)
    if (note.find('\n') != std::string::npos)
      connleak::fuzz::fail("notes are one line each", note, __FILE__, __LINE__);
  return 0;
}
