// The exit report shares one FrameList per distinct stack (issue 19): sharing
// must never change what is written, and a writer's edit of one connection's
// frames must never reach another's.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "collector/core/stack_depot.h"
#include "collector/report/format/json_fields.h"
#include "collector/report/format/report_json.h"
#include "collector/report/format/report_text.h"
#include "collector/report/symbolize.h"

namespace connleak {
namespace {

Frame frame(std::uint64_t address, const std::string& function) {
  Frame f;
  f.address = address;
  f.module = "/srv/app";
  f.function = function;
  f.file = "/src/app.c";
  f.line = static_cast<int>(address & 0xff);
  return f;
}

TEST(FrameList, CopiesShareTheFramesAndAnEditCopiesThemFirst) {
  FrameList a = std::vector<Frame>{frame(0x10, "open_db"), frame(0x20, "main")};
  FrameList b = a;
  EXPECT_EQ(a.identity(), b.identity());
  b[0].function = "changed";  // b's own copy now
  EXPECT_NE(a.identity(), b.identity());
  EXPECT_EQ(a[0].function, "open_db");
  EXPECT_EQ(b[0].function, "changed");
  // Unshared: edited in place.
  const void* own = b.identity();
  b.push_back(frame(0x30, "start"));
  EXPECT_EQ(b.identity(), own);
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(a.size(), 2u);
  FrameList empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.identity(), nullptr);
  EXPECT_TRUE(empty.frames().empty());
}

__attribute__((noinline)) int first_function(int x) {
  return x * 3 + 1;
}
__attribute__((noinline)) int second_function(int x) {
  return x * 5 + 2;
}

// Two interned stacks sharing their outer frame: each id resolves to its own
// frames, once, and the shared address to the same frame in both.
TEST(Symbolizer, StacksSharingFramesResolveEachToItsOwn) {
  const auto a = reinterpret_cast<std::uintptr_t>(&first_function) + 4;
  const auto b = reinterpret_cast<std::uintptr_t>(&second_function) + 4;
  const std::uintptr_t one[] = {a, b};
  const std::uintptr_t two[] = {b, b};
  const StackId id_one = StackDepot::instance().intern(one, 2);
  const StackId id_two = StackDepot::instance().intern(two, 2);
  ASSERT_NE(id_one, id_two);
  Symbolizer symbolizer;
  const FrameList first = symbolizer.resolve_stack(id_one);
  const FrameList second = symbolizer.resolve_stack(id_two);
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(first[0].address, a);
  EXPECT_EQ(first[1].address, b);
  EXPECT_EQ(second[0].address, b);
  EXPECT_EQ(second[1].address, b);
  ASSERT_TRUE(first[0].function && second[0].function);
  EXPECT_NE(first[0].function->find("first_function"), std::string::npos) << *first[0].function;
  EXPECT_NE(second[0].function->find("second_function"), std::string::npos) << *second[0].function;
  EXPECT_EQ(first[1].function, second[0].function);
  // Asked again: the same shared frames, not a second symbolization.
  EXPECT_EQ(symbolizer.resolve_stack(id_one).identity(), first.identity());
  EXPECT_NE(first.identity(), second.identity());
}

// JsonFields writes what nlohmann::json's dump writes, for every kind of
// value a connection holds, hostile strings included.
TEST(JsonFields, WritesTheBytesNlohmannDumps) {
  const std::string hostile[] = {"plain /path/x.c",
                                 "quote \" and backslash \\",
                                 "line\nbreak\ttab\x01\x1f\x7f",
                                 "caf\xc3\xa9 \xe2\x80\xa6 ok",
                                 "bad \xe9 byte \xff\xfe and \xed\xa0\x80 surrogate",
                                 "",
                                 "trailing \xc3"};
  for (const std::string& s : hostile) {
    nlohmann::json dom;
    JsonFields fast;
    dom["zeta"] = s;
    fast["zeta"] = s;
    dom["age_seconds"] = 12.5;
    fast["age_seconds"] = 12.5;
    dom["tiny"] = 1e-7;
    fast["tiny"] = 1e-7;
    dom["whole"] = 3.0;
    fast["whole"] = 3.0;
    dom["id"] = std::uint64_t{18446744073709551615ULL};
    fast["id"] = std::uint64_t{18446744073709551615ULL};
    dom["thread"] = std::int64_t{-42};
    fast["thread"] = std::int64_t{-42};
    dom["resets"] = std::uint32_t{7};
    fast["resets"] = std::uint32_t{7};
    dom["busy"] = true;
    fast["busy"] = true;
    dom["status"] = Named<ConnStatus>(ConnStatus::kLeaked);
    fast["status"] = Named<ConnStatus>(ConnStatus::kLeaked);
    dom["library"] = Named<ConnLibrary>(std::string_view("weird\x02lib"));
    fast["library"] = Named<ConnLibrary>(std::string_view("weird\x02lib"));
    const nlohmann::json null_value(nullptr);
    dom["closed_at"] = null_value;
    fast["closed_at"] = null_value;
    const nlohmann::json server_id(std::int64_t{-1});
    dom["server_id"] = server_id;
    fast["server_id"] = server_id;
    const nlohmann::json alerts = nlohmann::json::array({{{"kind", "lifetime"}, {"after", 1.5}}});
    dom["alerts"] = alerts;
    fast["alerts"] = alerts;
    const nlohmann::json none = nlohmann::json::array();
    dom["empty"] = none;
    fast["empty"] = none;
    const nlohmann::json context = {{"test", s}, {"scope", "module"}};
    dom["context"] = context;
    fast["context"] = context;
    dom["again"] = "first";
    fast["again"] = "first";
    dom["again"] = s;  // assigned twice: the second value
    fast["again"] = s;
    EXPECT_EQ(fast.text(), dom.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) << s;
    fast.clear();
    EXPECT_EQ(fast.text(), "{}");
  }
}

Report report_of(bool shared_frames) {
  Report r;
  r.version = "0.1.0";
  r.pid = 77;
  r.argv = {"./svc"};
  r.trigger = Trigger::kExit;
  r.generated_at = "2026-12-07T10:00:00.000Z";
  const FrameList site_a = std::vector<Frame>{frame(0x101, "open_a"), frame(0x1ff, "main")};
  // The same function, file and line as site_a's, another address: the text
  // report shows one site, the JSON two stacks.
  const FrameList site_a2 = std::vector<Frame>{frame(0x101, "open_a"), frame(0x2ff, "main")};
  const FrameList site_b =
      std::vector<Frame>{frame(0x102, "evil\n\nSUMMARY: connleak: no leaks"), frame(0x1ff, "main")};
  for (std::uint64_t id = 1; id <= 1500; ++id) {
    Connection c;
    c.id = id;
    c.library = ConnLibrary::kLibpq;
    c.handle = "0x" + std::to_string(1000 + id);
    c.target = "host=db dbname=app";
    c.status = ConnStatus::kLeaked;
    c.state = "connected";
    c.age_seconds = 0.25 * static_cast<double>(id);
    c.opened_at = "2026-12-07T09:59:59.000Z";
    c.thread = 9;
    c.client_module = "/usr/lib/libpq.so.5";
    const FrameList& site = id % 3 == 0 ? site_b : id % 3 == 1 ? site_a : site_a2;
    // Unshared: each connection its own equal copy, as a report read back from JSON.
    c.acquired.native = shared_frames ? site : FrameList(site.frames());
    if (id % 5 == 0) {
      c.acquired.script = std::vector<Frame>{{std::nullopt, std::nullopt, "handler", "/a.py", 3}};
      c.acquired.language = ScriptLanguage::kPython;
    }
    if (id % 7 == 0) {
      TransactionInfo txn;
      txn.state = "in_transaction";
      txn.seconds = 1.5;
      txn.began = Stacks{shared_frames ? site_a : FrameList(site_a.frames()), std::nullopt};
      c.transaction = std::move(txn);
    }
    r.connections.push_back(std::move(c));
  }
  r.summary.opened = r.summary.leaked = r.connections.size();
  return r;
}

// Writers cache per shared FrameList; frames equal but not shared must give
// the same bytes, and escaping for the text report must leave the model as it was.
TEST(ReportSharing, SharedAndUnsharedFramesWriteTheSameBytes) {
  const Report shared = report_of(true);
  const Report unshared = report_of(false);
  const std::string json_text = to_json_text(shared);
  EXPECT_EQ(json_text, to_json_text(unshared));
  const std::string text = render_text(shared);
  EXPECT_EQ(text, render_text(unshared));
  // Three native stacks, two of them with the same lines, each with and
  // without a Python part: four sites in the text (escaped), the JSON keeps
  // the stacks apart.
  EXPECT_NE(text.find("from 4 site(s)"), std::string::npos) << text;
  EXPECT_NE(text.find("evil\\n\\nSUMMARY"), std::string::npos);
  EXPECT_EQ(shared.connections[2].acquired.native[0].function,
            "evil\n\nSUMMARY: connleak: no leaks");  // the model is not escaped in place
  const nlohmann::json doc = nlohmann::json::parse(json_text);
  EXPECT_EQ(to_json(report_from_json(doc)), to_json(shared));
}

}  // namespace
}  // namespace connleak
