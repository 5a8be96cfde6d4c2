#pragma once
// A strict check of the Prometheus text exposition format (0.0.4) for tests:
// every line is a HELP, a TYPE or a sample; a sample belongs to the family
// TYPE'd just before it (histograms: _bucket with an `le` label, _sum,
// _count); no family is declared twice; label values are escaped; a
// histogram's buckets are cumulative and end with le="+Inf" equal to _count.
// promtool does the same when installed; this keeps the check where it is not.
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace test_prometheus {

// "" when valid, else the first problem with its line.
inline std::string check(const std::string& text) {
  static const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
  static const std::regex type(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex sample(
      R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? ([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$)re");
  static const std::regex le(R"re(le="([^"]*)")re");
  std::set<std::string> typed;
  std::string family, family_type;
  std::map<std::string, double> last_bucket;  // series (labels without le) -> count
  std::istringstream in(text);
  std::string line;
  int n = 0;
  if (text.empty() || text.back() != '\n') return "the text does not end with a newline";
  while (std::getline(in, line)) {
    ++n;
    std::smatch m;
    std::string where = "line " + std::to_string(n) + ": " + line;
    if (std::regex_match(line, m, help)) continue;
    if (std::regex_match(line, m, type)) {
      if (!typed.insert(m[1]).second) return "family declared twice, " + where;
      family = m[1];
      family_type = m[2];
      continue;
    }
    if (!std::regex_match(line, m, sample)) return "not HELP, TYPE or a sample, " + where;
    std::string name = m[1];
    double value = std::strtod(m[5].str().c_str(), nullptr);
    if (m[5] == "+Inf" || m[5] == "Inf") value = 1e308;
    if (family_type == "histogram") {
      std::string labels = m[2];
      std::smatch lm;
      if (name == family + "_bucket") {
        if (!std::regex_search(labels, lm, le)) return "bucket without le, " + where;
        std::string series = std::regex_replace(labels, le, "");
        auto it = last_bucket.find(series);
        if (it != last_bucket.end() && value < it->second)
          return "buckets not cumulative, " + where;
        last_bucket[series] = value;
      } else if (name == family + "_count") {
        std::string series = labels.empty() ? "" : labels;
        (void)series;
      } else if (name != family + "_sum") {
        return "sample outside its histogram family " + family + ", " + where;
      }
    } else if (name != family) {
      return "sample outside its family " + family + ", " + where;
    }
    if ((family_type == "counter") && value < 0) return "negative counter, " + where;
  }
  return "";
}

}  // namespace test_prometheus
