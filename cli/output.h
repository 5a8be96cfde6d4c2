#pragma once
// Renders a merged report in the format the user asked for. Text always goes
// through collector/render_text (the shim's own renderer); CI formats through
// their collector renderers.
#include <string>

#include "collector/policy/suppressions.h"
#include "collector/report/report_model.h"
#include "collector/report/report_timeline.h"

namespace connleak::cli {

enum class Format { text, json, sarif, junit, trace, html, prometheus };
Format parse_format(const std::string& name);  // the CLI validates the set first

struct RenderOptions {
  const Suppressions* suppressions = nullptr;  // listed with hit counts when given
  std::string source_root;                     // SARIF/JUnit paths are relative to it
  std::vector<SnapshotMark> snapshots;         // pictures mark pool_exhausted/server_refused
};

std::string render(const Report& report, Format format, const RenderOptions& options);

}  // namespace connleak::cli
