// The wire parsers (PostgreSQL and MySQL, collector/wire_*.cpp) on hostile
// conversations. Input: 4 bytes of split seed, then messages, each one byte of
// direction (bit 0: the client sent it) and a 2-byte big-endian length. Each
// message is fed as one call, then the whole conversation again one byte per
// call, then cut at random points; what the parser has reported by the end of
// each message must be the same every time (a socket may split any write
// anywhere), every call gets an exact-size heap copy (ASan sees any read past
// it), and once the parser is done it reports nothing more.
//
// Seeds (corpus/wire/): the recorded conversations of tests/unit/wire_data, one
// message per "C"/"S" line, with split seed 00000001; opengauss351_* is a
// pure-Python 3.51 client and tests/e2e/python/opengauss_fake_server.py as a
// relay saw them, opengauss350_* and opengauss_stop_request are built from
// openGauss's published protocol (no real openGauss server to record).
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "collector/wire/wire_protocol.h"
#include "tests/fuzz/fuzz_input.h"

using namespace connleak;
using namespace connleak::wire;

namespace {

struct Msg {
  bool sent;
  std::string bytes;
};

// What the parser has said by the end of one message. Splits happen inside
// messages only, and a Feed is "latest wins" within a call (one call holding a
// whole pipelined response reports only its last state), so these snapshots at
// message boundaries are what every split must agree on.
struct Snapshot {
  Protocol protocol = Protocol::kUndecided;
  Blind blind = Blind::kNone;
  std::int64_t server_id = -1;  // latest reported
  char txn = '-';               // latest reported transaction state
  bool cancel_request = false;  // ever
  int decided = 0;              // calls that reported it, so far (at most 1)
  int went_blind = 0;           // likewise
  bool may_begin = false;       // reported during this message
  bool closing = false;         // likewise
  bool operator==(const Snapshot&) const = default;
};

struct Outcome {
  Snapshot now;
  std::vector<Snapshot> after;  // one per message
  bool operator==(const Outcome& o) const { return after == o.after; }
  std::string describe() const {
    std::string out;
    for (const Snapshot& s : after) {
      out += "\n    protocol=" + std::to_string(int(s.protocol)) +
             " blind=" + blind_reason(s.blind) + " server_id=" + std::to_string(s.server_id) +
             " txn=" + s.txn + " cancel=" + std::to_string(s.cancel_request) +
             " decided=" + std::to_string(s.decided) +
             " went_blind=" + std::to_string(s.went_blind) +
             " may_begin=" + std::to_string(s.may_begin) + " closing=" + std::to_string(s.closing);
    }
    return out;
  }
};

char letter(TxnState s) {
  switch (s) {
    case TxnState::kIdle:
      return 'I';
    case TxnState::kInTransaction:
      return 'T';
    case TxnState::kInError:
      return 'E';
    default:
      return '?';
  }
}

void feed(Conversation& conv, Outcome& o, bool sent, const char* p, std::size_t n) {
  // Exactly n bytes on the heap: one byte more read is an ASan report.
  std::unique_ptr<std::uint8_t[]> copy(new std::uint8_t[n ? n : 1]);
  std::memcpy(copy.get(), p, n);
  const bool was_done = conv.done();
  const Feed f = sent ? conv.client_sent(copy.get(), n) : conv.client_received(copy.get(), n);
  if (was_done) {
    FUZZ_CHECK(!f.decided && !f.went_blind && !f.has_txn && f.server_id < 0 && !f.may_begin,
               "report after done()");
  }
  if (f.went_blind) FUZZ_CHECK(conv.done(), "went blind but not done()");
  if (conv.done())
    FUZZ_CHECK(!conv.wants_sent() && !conv.wants_received(), "done() but wants more");
  Snapshot& s = o.now;
  s.decided += f.decided;
  s.went_blind += f.went_blind;
  s.may_begin |= f.may_begin;
  s.closing |= f.closing;
  s.cancel_request |= f.cancel_request;
  if (f.server_id >= 0) s.server_id = f.server_id;
  if (f.has_txn) s.txn = letter(f.txn);
  s.protocol = conv.protocol();
  s.blind = conv.blind();
}

enum class Split { kWhole, kBytes, kRandom };

Outcome replay(const std::vector<Msg>& msgs, Split split, std::uint32_t seed) {
  Conversation conv;
  Outcome o;
  std::mt19937 rng(seed);
  for (const Msg& m : msgs) {
    if (m.bytes.empty()) feed(conv, o, m.sent, m.bytes.data(), 0);
    for (std::size_t i = 0; i < m.bytes.size();) {
      std::size_t n = m.bytes.size() - i;
      if (split == Split::kBytes) n = 1;
      if (split == Split::kRandom) n = std::min<std::size_t>(n, 1 + rng() % (rng() % 2 ? 7 : 300));
      feed(conv, o, m.sent, m.bytes.data() + i, n);
      i += n;
    }
    o.after.push_back(o.now);
    o.now.may_begin = o.now.closing = false;
  }
  FUZZ_CHECK(o.now.decided <= 1 && o.now.went_blind <= 1, o.describe());
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const auto seed = static_cast<std::uint32_t>(in.u64(4));
  std::vector<Msg> msgs;
  while (!in.empty() && msgs.size() < 256) {
    const bool sent = in.byte() & 1;
    const std::size_t len = static_cast<std::size_t>(in.u64(2));
    std::string bytes;
    const std::size_t n = std::min(len, in.left());
    for (std::size_t i = 0; i < n; ++i) bytes += static_cast<char>(in.byte());
    msgs.push_back({sent, std::move(bytes)});
  }
  const Outcome whole = replay(msgs, Split::kWhole, seed);
  const Outcome bytes = replay(msgs, Split::kBytes, seed);
  FUZZ_CHECK(bytes == whole, "whole: " + whole.describe() + "\n  bytes: " + bytes.describe());
  const Outcome random = replay(msgs, Split::kRandom, seed);
  FUZZ_CHECK(random == whole, "whole: " + whole.describe() + "\n  random: " + random.describe());
  return 0;
}
