#pragma once
// Text for pool checkouts (extension): the exit report's leaked and reclaimed
// checkouts and undisposed pools, snapshots (pool_exhausted, server_refused)
// and the worker thread's checkout_held warnings.
#include <string>
#include <vector>

#include "collector/report/report_model.h"

namespace connleak {

// "sqlalchemy.QueuePool sqlalchemy#1 postgresql://app@host/db", or "pool 3".
std::string pool_label(const Report& report, std::uint64_t pool_id,
                       std::optional<std::int64_t> pid = std::nullopt);
// Extension (test attribution): "test t.py::test_a" or "fixture db (module) of
// t.py::test_a", escaped for a terminal.
std::string describe_context(const ContextInfo& context);
// "checkout 3 of <pool> (connection 7, thread 123, task Task-3, held 1.5s, in transaction)"
std::string describe_checkout(const Report& report, const Checkout& checkout);

// The checkouts part of a report's text: leaked (never returned) and reclaimed
// checkouts grouped by checkout stack, open ones in a dump, and one low-severity
// line per pool whose idle connections were still open at exit. "" if none.
std::string render_checkouts_text(const Report& report);
// Number of checkout problems render_checkouts_text lists (leaked + reclaimed,
// or open in a dump).
std::size_t checkout_problems(const Report& report);

// A checkout_threshold warning for checkouts sharing a checkout stack (each
// one's holder stack shown when it differs): `report` supplies the pools.
std::string render_checkout_alert(const Report& report, const std::vector<Checkout>& group,
                                  double threshold_seconds, std::size_t total);

}  // namespace connleak
