#include "cli/output.h"

#include "collector/report/format/report_html.h"
#include "collector/report/format/report_json.h"
#include "collector/report/format/report_junit.h"
#include "collector/report/format/report_prometheus.h"
#include "collector/report/format/report_sarif.h"
#include "collector/report/format/report_text.h"
#include "collector/report/format/report_trace.h"

namespace connleak::cli {

Format parse_format(const std::string& name) {
  if (name == "json") return Format::json;
  if (name == "sarif") return Format::sarif;
  if (name == "junit") return Format::junit;
  if (name == "trace") return Format::trace;
  if (name == "prometheus") return Format::prometheus;
  if (name == "html") return Format::html;
  return Format::text;
}

std::string render(const Report& report, Format format, const RenderOptions& options) {
  switch (format) {
    case Format::json: {
      nlohmann::json doc = to_json(report);
      if (options.suppressions) {
        // Extension: which suppressions removed how many connections.
        nlohmann::json used = nlohmann::json::array();
        for (const Suppression& s : options.suppressions->entries())
          used.push_back(
              {{"suppression", "leak:" + s.pattern}, {"origin", s.origin}, {"hits", s.hits}});
        doc["suppressions"] = std::move(used);
      }
      return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    case Format::sarif:
      return render_sarif(report, SarifOptions{options.source_root});
    case Format::junit:
      return render_junit(report, JunitOptions{options.source_root});
    case Format::trace:
      return render_trace(report, options.snapshots);
    case Format::html:
      return render_html(report, options.snapshots);
    case Format::prometheus:
      return render_prometheus(report, options.snapshots);
    case Format::text:
      break;
  }
  TextOptions text;
  text.clean_line = true;
  if (options.suppressions) text.before_summary = suppressions_used_table(*options.suppressions);
  return render_text(report, text);
}

}  // namespace connleak::cli
