#pragma once
// The fields that name a connection and say where it stands, written the same
// way by every format built on nlohmann::json (the JSON report, the trace's
// event arguments): one list, so the formats cannot drift apart.
#include "collector/report/report_model.h"

namespace connleak {

template <typename Json>
void put_connection_identity(Json& j, const Connection& c) {
  j["id"] = c.id;
  j["library"] = c.library;
  j["handle"] = c.handle;
  j["target"] = c.target;
  j["status"] = c.status;
  j["state"] = c.state;
  j["opened_at"] = c.opened_at;
}

}  // namespace connleak
