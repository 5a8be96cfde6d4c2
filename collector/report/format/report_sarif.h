#pragma once
// SARIF 2.1.0 for code-scanning services (GitHub, GitLab, Azure DevOps): one
// result per problem site, located at the innermost frame in the user's code
// so the service annotates the line that opened the connection; the whole
// acquisition stack is in the message and in a code flow.
#include <nlohmann/json.hpp>
#include <string>

#include "collector/report/report_model.h"

namespace connleak {

struct SarifOptions {
  // Absolute directory (the repository checkout). Files under it become URIs
  // relative to %SRCROOT%, which is what code scanning maps onto the
  // repository; other absolute files become file:// URIs. Empty: no base.
  std::string source_root;
};

nlohmann::ordered_json to_sarif(const Report& report, const SarifOptions& options = {});
std::string render_sarif(const Report& report,
                         const SarifOptions& options = {});  // pretty, newline-terminated

}  // namespace connleak
