#pragma once
// Turns raw return addresses into function, file, line and module, only when a
// report is written (never in a hook). Results are cached per address: 10,000
// leaks from 100 sites symbolize each distinct frame once.
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "collector/report/report_model.h"

namespace connleak {

class Symbolizer {
 public:
  Frame resolve(std::uintptr_t return_address);
  std::vector<Frame> resolve_all(std::span<const std::uintptr_t> addresses);

 private:
  std::unordered_map<std::uintptr_t, Frame> cache_;
};

}  // namespace connleak
