#pragma once
// Turns raw return addresses into function, file, line and module, only when a
// report is written (never in a hook). Results are cached per address: 10,000
// leaks from 100 sites symbolize each distinct frame once. One Symbolizer
// serves one report: interned stacks never change, so neither can its
// per-stack cache go stale while it lives.
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "collector/core/stack_depot.h"
#include "collector/report/report_model.h"

namespace connleak {

class Symbolizer {
 public:
  Frame resolve(std::uintptr_t return_address);
  std::vector<Frame> resolve_all(std::span<const std::uintptr_t> addresses);
  // The frames of interned native stack `id` (StackDepot::instance()),
  // resolved on first use and then shared by every connection opened there.
  FrameList resolve_stack(StackId id);
  // The same for a stack in the host's language (script_depot()).
  FrameList script_stack(StackId id);

 private:
  std::unordered_map<std::uintptr_t, Frame> cache_;
  std::unordered_map<StackId, FrameList> native_stacks_;
  std::unordered_map<StackId, FrameList> script_stacks_;
};

}  // namespace connleak
