#pragma once
// JSON form of the report (the contract in shared/spec/contract.md). One
// serializer and one parser, so what the shim writes the CLI reads back exactly.
#include <nlohmann/json.hpp>
#include <string>

#include "collector/report/report_model.h"

namespace connleak {

nlohmann::json to_json(const Report& report);
std::string to_json_text(const Report& report);  // pretty, newline-terminated
// Throws nlohmann::json::exception (or std::invalid_argument) on a malformed report.
Report report_from_json(const nlohmann::json& doc);

}  // namespace connleak
