// Protocol classification and packet framing shared by both protocols.
// The protocol-specific parsers are in wire_postgres.cpp and wire_mysql.cpp.
//
// Every parser works on [p, end) and never looks past `end`: a header or the
// first bytes of a payload split across calls are collected in a Framer's
// small buffer, and payload bytes nobody needs are skipped by count.
#include "collector/wire/wire_protocol.h"

#include <cctype>
#include <cstring>

namespace connleak::wire {

namespace {
constexpr std::uint8_t kClientFirst = 1;
constexpr std::uint8_t kServerFirst = 2;
}  // namespace

const char* protocol_name(Protocol p) {
  switch (p) {
    case Protocol::kPostgres:
      return "postgresql";
    case Protocol::kMysql:
      return "mysql";
    default:
      return "";
  }
}

const char* blind_reason(Blind b) {
  switch (b) {
    case Blind::kEncrypted:
      return "encrypted";
    case Blind::kCompressed:
      return "compressed";
    case Blind::kLost:
      return "unparsed";
    default:
      return "";
  }
}

// --- Framer ------------------------------------------------------------------

void Conversation::Framer::start(std::uint8_t header_size) {
  *this = Framer();
  hdr = header_size;
  want = header_size;
}

// Consumes input until the header (kHeader) or the header plus the wanted
// payload prefix (kPacket) is complete, or the input runs out (kNeedMore).
// A step that is already complete returns at once, even with no input, so a
// packet that ends exactly at the end of a call is handled in that call.
Conversation::Framer::Step Conversation::Framer::step(const std::uint8_t*& p,
                                                      const std::uint8_t* end) {
  if (hdr == 0) return Step::kNeedMore;  // not started: the protocol is unknown
  if (skip > 0) {
    std::size_t k =
        static_cast<std::size_t>(end - p) < skip ? static_cast<std::size_t>(end - p) : skip;
    p += k;
    skip -= static_cast<std::uint32_t>(k);
    if (skip > 0) return Step::kNeedMore;
  }
  if (have < want) {
    std::size_t k = static_cast<std::size_t>(want - have);
    if (static_cast<std::size_t>(end - p) < k) k = static_cast<std::size_t>(end - p);
    if (k > 0) std::memcpy(buf + have, p, k);
    have = static_cast<std::uint8_t>(have + k);
    p += k;
    if (have < want) return Step::kNeedMore;
  }
  return in_payload ? Step::kPacket : Step::kHeader;
}

// After kHeader: the payload is `len` bytes, of which the first `prefix`
// (bounded by the buffer and by the payload) are collected before kPacket.
void Conversation::Framer::expect_payload(std::uint32_t len, std::size_t prefix) {
  const std::size_t room = sizeof buf - hdr;
  if (prefix > room) prefix = room;
  if (prefix > len) prefix = len;
  body = len;
  in_payload = true;
  want = static_cast<std::uint8_t>(hdr + prefix);
}

// After kPacket: skip the unread rest of the payload, then frame the next one.
void Conversation::Framer::next_packet() {
  skip = body - static_cast<std::uint32_t>(prefix_len());
  continued = body == 0xFFFFFFu;
  have = 0;
  want = hdr;
  in_payload = false;
}

// --- Conversation ------------------------------------------------------------

void Conversation::decide(Protocol p, Feed& out) {
  protocol_ = p;
  out.decided = true;
}

void Conversation::go_blind(Blind why, Feed& out) {
  if (blind_ != Blind::kNone) return;
  blind_ = why;
  out.went_blind = true;
}

bool Conversation::wants_sent() const {
  if (done()) return false;
  // Both protocols: the client's bytes tell when it sends a command that may
  // begin a transaction (its stacks are taken then).
  return true;
}

bool Conversation::wants_received() const {
  return !done();
}

Feed Conversation::client_sent(const std::uint8_t* data, std::size_t n) {
  return consume(true, data, n);
}

Feed Conversation::client_received(const std::uint8_t* data, std::size_t n) {
  return consume(false, data, n);
}

Feed Conversation::consume(bool sent, const std::uint8_t* data, std::size_t n) {
  Feed out;
  if (data == nullptr || n == 0 || done()) return out;
  std::size_t used = 0;
  if (protocol_ == Protocol::kUndecided) {
    used = classify(sent, data, n, out);
    if (protocol_ == Protocol::kUndecided || done()) return out;
    replay_first(sent, out);
  }
  feed_protocol(sent, data + used, data + n, out);
  if (out.has_txn) last_txn_ = out.txn;
  return out;
}

bool starts_transaction(const std::uint8_t* sql, std::size_t n) {
  std::size_t i = 0;
  for (;;) {  // whitespace and /* comments */ (a driver's or an ORM's prefix)
    while (i < n && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r')) ++i;
    if (i + 1 < n && sql[i] == '/' && sql[i + 1] == '*') {
      const void* close = nullptr;
      for (std::size_t j = i + 2; j + 1 < n; ++j)
        if (sql[j] == '*' && sql[j + 1] == '/') {
          close = sql + j;
          break;
        }
      if (!close) return false;
      i = static_cast<std::size_t>(static_cast<const std::uint8_t*>(close) - sql) + 2;
      continue;
    }
    break;
  }
  auto word = [&](const char* w) {
    std::size_t k = 0;
    for (; w[k]; ++k)
      if (i + k >= n || (sql[i + k] | 0x20) != w[k]) return false;
    // A whole word: "BEGIN;" yes, "BEGINNING" no.
    if (i + k < n && (std::isalnum(sql[i + k]) || sql[i + k] == '_')) return false;
    i += k;
    return true;
  };
  if (word("begin")) return true;
  if (!word("start")) return false;
  while (i < n && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r')) ++i;
  return word("transaction");
}

// Holds the opening bytes in first_ until the protocol can be told; returns
// how many of `data` went into first_. PostgreSQL clients speak first, MySQL
// servers speak first; bytes from the other side before a decision mean
// neither (a database never answers half a packet).
std::size_t Conversation::classify(bool sent, const std::uint8_t* data, std::size_t n, Feed& out) {
  const std::uint8_t dir = sent ? kClientFirst : kServerFirst;
  if (first_dir_ == 0) first_dir_ = dir;
  if (first_dir_ != dir) {
    decide(Protocol::kNotDatabase, out);
    return 0;
  }
  // A PostgreSQL opening packet is decided on its 8 bytes; a MySQL greeting
  // needs its version string, so buffer as much of it as fits.
  const std::size_t cap = sent ? 8 : sizeof first_;
  std::size_t take = cap - first_len_;
  if (take > n) take = n;
  std::memcpy(first_ + first_len_, data, take);
  first_len_ = static_cast<std::uint8_t>(first_len_ + take);
  if (sent)
    pg_classify(data, n, out);
  else
    my_classify(out);
  return take;
}

// Once decided, the held bytes are parsed like any others: the opening
// packet goes through the same framing as the ones that follow it.
void Conversation::replay_first(bool sent, Feed& out) {
  if (protocol_ == Protocol::kPostgres) {
    client_.start(8);  // startup-class packets: Int32 length, Int32 code
    server_.start(5);  // messages: type byte, Int32 length
  } else {
    client_.start(4);  // packets: 3-byte length, sequence id
    server_.start(4);
  }
  feed_protocol(sent, first_, first_ + first_len_, out);
}

void Conversation::feed_protocol(bool sent, const std::uint8_t* p, const std::uint8_t* end,
                                 Feed& out) {
  if (done() || p == end) return;
  if (protocol_ == Protocol::kPostgres) {
    if (sent)
      pg_client(p, end, out);
    else
      pg_server(p, end, out);
  } else if (protocol_ == Protocol::kMysql) {
    if (sent)
      my_client(p, end, out);
    else
      my_server(p, end, out);
  }
}

}  // namespace connleak::wire
