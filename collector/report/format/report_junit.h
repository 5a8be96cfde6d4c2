#pragma once
// JUnit XML, the format every CI system shows as test results: one test case
// per problem site (named by the site, so a CI's history tracks it across
// runs), failing, with the stacks in the failure body; a clean report is one
// passing test case so the suite is never empty.
#include <string>
#include <string_view>

#include "collector/report/report_model.h"

namespace connleak {

struct JunitOptions {
  std::string source_root;  // files under it are shown relative to it in names and `file`
};

std::string render_junit(const Report& report, const JunitOptions& options = {});

// XML 1.0 text/attribute escaping; characters XML 1.0 cannot carry at all
// (control characters other than tab, newline, carriage return) become '?'.
std::string xml_escape(std::string_view text);

}  // namespace connleak
