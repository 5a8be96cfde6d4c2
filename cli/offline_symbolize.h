#pragma once
// Symbolizes a dead process's native frames from the files its journal names,
// with elfutils' libdwfl placing each file at the address it was loaded at.
// A file whose build id differs from the recorded one (rebuilt, upgraded) is
// not used: its frames stay raw addresses and one note says why, since names
// read from another build would be wrong.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collector/journal/journal_reader.h"
#include "collector/report/report_model.h"

namespace connleak::cli {

class OfflineSymbolizer {
 public:
  explicit OfflineSymbolizer(const std::vector<journal::JournalModule>& modules);
  ~OfflineSymbolizer();
  OfflineSymbolizer(const OfflineSymbolizer&) = delete;
  OfflineSymbolizer& operator=(const OfflineSymbolizer&) = delete;

  Frame resolve(std::uint64_t return_address);
  // One line per module that could not be used (changed build id, missing file).
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> notes_;
};

}  // namespace connleak::cli
