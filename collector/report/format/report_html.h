#pragma once
// One self-contained HTML file (inline CSS and JavaScript, nothing fetched at
// view time): a timeline with one lane per connection, grouped by process,
// pool and target; checkouts as bars inside their connection's lane,
// transactions shaded, alerts and snapshots as markers, leaked connections red
// to the right edge; a click shows the stacks (the program's frames first),
// target and last statement; a table of sites by count; filters by process,
// library, pool and status. The data is embedded as JSON in a
// <script type="application/json"> block with every "</" escaped.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "collector/report/report_model.h"
#include "collector/report/report_timeline.h"

namespace connleak {

// The compact data the page draws (times in ms from the earliest event).
nlohmann::ordered_json html_data(const Report& report, const std::vector<SnapshotMark>& marks = {});
std::string render_html(const Report& report, const std::vector<SnapshotMark>& marks = {});

// The page around the data (report_html_page.cpp): its one placeholder,
// kHtmlDataPlaceholder, is replaced by the escaped JSON.
extern const char* const kHtmlPage;
extern const char* const kHtmlDataPlaceholder;

}  // namespace connleak
