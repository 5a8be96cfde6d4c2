// PostgreSQL: the client's opening packets and the server's message stream.
//
// The client opens with startup-class packets (Int32 length, Int32 code, no
// type byte): SSLRequest and GSSENCRequest get a single unframed answer byte,
// the StartupMessage ends the client's part that matters here. The server's
// side is a stream of typed messages; ReadyForQuery carries the transaction
// status and BackendKeyData the backend's pid.
#include <cstring>

#include "collector/wire/wire_protocol.h"

namespace connleak::wire {

namespace {

// Protocol 3.0 is 196608; 3.2 (PostgreSQL 18) is 196610. Later minors are not
// accepted, except the two that openGauss and GaussDB clients send (their
// libpq's PG_PROTOCOL(3, 51), 3.50 from older Gauss clients; the server's
// protoVersionList is {2.0, 3.0, 3.50, 3.51}): every extra code accepted is
// one more way to mistake another protocol's opening for a StartupMessage, so
// those two exact values, not the range up to them.
constexpr std::uint32_t kProtocol30 = 196608;
constexpr std::uint32_t kProtocol32 = 196610;
constexpr std::uint32_t kProtocolGauss350 = 196608 + 50;
constexpr std::uint32_t kProtocolGauss351 = 196608 + 51;
constexpr std::uint32_t kSslRequest = 80877103;
constexpr std::uint32_t kGssEncRequest = 80877104;
constexpr std::uint32_t kCancelRequest = 80877102;
// openGauss's StopRequest (PG_PROTOCOL(1234, 5681)): length, code, backend
// pid, 8-byte query id. Like a CancelRequest, a short side connection asking
// the server to stop a query, never a session.
constexpr std::uint32_t kGaussStopRequest = 80877105;
constexpr std::uint32_t kGaussStopRequestLength = 20;
constexpr std::uint32_t kMaxStartupLength = 10000;  // the server's own limit
constexpr std::uint32_t kMaxMessageLength = 1u << 30;

// pg_client_
constexpr std::uint8_t kClientStartup = 0;   // startup-class packets expected
constexpr std::uint8_t kClientMessages = 1;  // StartupMessage sent: typed messages follow
// pg_server_
constexpr std::uint8_t kServerMessages = 0;
constexpr std::uint8_t kServerAwaitSsl = 1;  // next byte: 'S' or 'N' (or 'E', an ErrorResponse)
constexpr std::uint8_t kServerAwaitGss = 2;  // next byte: 'G' or 'N' (or 'E')

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

bool is_startup(std::uint32_t length, std::uint32_t code) {
  const bool version = (code >= kProtocol30 && code <= kProtocol32) || code == kProtocolGauss350 ||
                       code == kProtocolGauss351;
  return version && length >= 8 && length <= kMaxStartupLength;
}

// A request that opens a short side connection (not a session, not a leak).
bool is_side_request(std::uint32_t length, std::uint32_t code) {
  return (length == 16 && code == kCancelRequest) ||
         (length == kGaussStopRequestLength && code == kGaussStopRequest);
}

// PostgreSQL 17 direct SSL: a TLS ClientHello whose ALPN list names
// "postgresql" (one length byte, then the name). No byte of the name is 0x0a,
// so a partial match restarts at 0 or 1 (no general string search needed).
constexpr char kAlpn[] = "\x0apostgresql";
constexpr std::uint8_t kAlpnLen = sizeof kAlpn - 1;
constexpr std::uint32_t kTlsRecordHeader = 5;   // type, version (2), length (2)
constexpr std::uint32_t kMaxTlsRecord = 16384;  // the largest plaintext record

}  // namespace

// Decides on the client's first bytes. `call`/`n` is the whole of this call's
// data (first_ holds the stream's first 8 bytes).
void Conversation::pg_classify(const std::uint8_t* call, std::size_t n, Feed& out) {
  if (first_[0] == 0x16) return pg_classify_tls(call, n, out);  // TLS handshake record
  // Every opening packet is shorter than 16 MB: its first length byte is 0.
  if (first_[0] != 0) return decide(Protocol::kNotDatabase, out);
  if (first_len_ < 8) return;
  const std::uint32_t length = be32(first_);
  const std::uint32_t code = be32(first_ + 4);
  if (is_startup(length, code)) {
    decide(Protocol::kPostgres, out);
  } else if (length == 8 && (code == kSslRequest || code == kGssEncRequest)) {
    // Parsed as PostgreSQL from here on, but not yet called one: a client
    // with sslmode=prefer opens its cancel connections with an SSLRequest
    // too, and only the packet after the server's 'N' tells them apart.
    protocol_ = Protocol::kPostgres;
    pg_tentative_ = true;
  } else {
    decide(Protocol::kNotDatabase, out);
    out.cancel_request = is_side_request(length, code);
  }
}

// A TLS ClientHello is scanned for the ALPN name as a stream, across calls:
// the name is found at the same byte of the conversation however the socket
// split it (deciding on the first call's bytes alone, as this once did, gave a
// different answer when the ClientHello came in pieces). The answer is "not a
// database" once the first record (at most 16 KB) ended without the name.
void Conversation::pg_classify_tls(const std::uint8_t* data, std::size_t n, Feed& out) {
  for (std::size_t i = 0; i < n; ++i) {
    if (tls_seen_ >= kTlsRecordHeader) {
      std::uint32_t record = (std::uint32_t{first_[3]} << 8) | first_[4];
      if (record > kMaxTlsRecord) record = kMaxTlsRecord;
      if (tls_seen_ >= kTlsRecordHeader + record) break;
    }
    ++tls_seen_;
    const auto b = static_cast<char>(data[i]);
    tls_match_ = static_cast<std::uint8_t>(b == kAlpn[tls_match_] ? tls_match_ + 1
                                                                  : (b == kAlpn[0] ? 1 : 0));
    if (tls_match_ == kAlpnLen) {
      decide(Protocol::kPostgres, out);
      go_blind(Blind::kEncrypted, out);
      return;
    }
  }
  if (tls_seen_ < kTlsRecordHeader) return;
  std::uint32_t record = (std::uint32_t{first_[3]} << 8) | first_[4];
  if (record > kMaxTlsRecord) record = kMaxTlsRecord;
  if (tls_seen_ >= kTlsRecordHeader + record) decide(Protocol::kNotDatabase, out);
}

void Conversation::pg_client(const std::uint8_t* p, const std::uint8_t* end, Feed& out) {
  while (!done()) {
    Framer::Step step = client_.step(p, end);
    if (step == Framer::Step::kNeedMore) return;
    if (pg_client_ == kClientMessages) {
      if (step == Framer::Step::kHeader) {
        const std::uint32_t length = be32(client_.buf + 1);
        if (length < 4 || length > kMaxMessageLength) return go_blind(Blind::kLost, out);
        // Query: the SQL; Parse: statement name, then the SQL.
        const std::uint8_t type = client_.buf[0];
        client_.expect_payload(length - 4,
                               type == 'Q' || type == 'P' || type == 'B' ? sizeof client_.buf : 0);
        continue;
      }
      pg_client_message(out);
      client_.next_packet();
      continue;
    }
    if (step == Framer::Step::kHeader) {
      const std::uint32_t length = be32(client_.buf);
      if (length < 8 || length > kMaxStartupLength) return go_blind(Blind::kLost, out);
      client_.expect_payload(length - 8, 0);  // the code is in the header
      continue;
    }
    pg_startup_packet(out);
    client_.next_packet();
    if (pg_client_ == kClientMessages) {
      // From here on: type byte + Int32 length. The rest of the
      // StartupMessage's body is still to be passed over.
      const std::uint32_t rest = client_.skip;
      client_.start(5);
      client_.skip = rest;
    }
  }
}

void Conversation::pg_confirm(Feed& out) {
  if (!pg_tentative_) return;
  pg_tentative_ = false;
  out.decided = true;
}

// BEGIN sent while idle: the transaction the server will confirm began here.
void Conversation::pg_client_message(Feed& out) {
  const std::uint8_t type = client_.buf[0];
  if (type == 'X') out.closing = true;  // Terminate
  if (sink_) pg_statement(type);
  if ((type != 'Q' && type != 'P') || in_transaction()) return;
  const std::uint8_t* sql = client_.payload();
  std::size_t n = client_.prefix_len();
  if (type == 'P') {  // skip the statement name
    const void* nul = std::memchr(sql, 0, n);
    if (!nul) return;
    const std::size_t skip =
        static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - sql) + 1;
    sql += skip;
    n -= skip;
  }
  if (starts_transaction(sql, n)) out.may_begin = true;
}

// Query: the SQL. Parse: statement name, SQL. Bind: portal name, statement
// name. A string without its NUL in the kept prefix was cut.
void Conversation::pg_statement(std::uint8_t type) {
  if (type != 'Q' && type != 'P' && type != 'B') return;
  const std::uint8_t* p = client_.payload();
  const std::size_t n = client_.prefix_len();
  auto field = [&](std::size_t from, std::size_t& len) {
    const void* nul = from <= n ? std::memchr(p + from, 0, n - from) : nullptr;
    len = nul ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - (p + from))
              : n - from;
    return nul != nullptr;
  };
  StatementEvent e;
  std::size_t first = 0;
  const bool first_ended = field(0, first);
  if (type == 'Q') {
    e.sql = p;
    e.sql_len = first;
    e.cut = !first_ended;
    return statement(e);
  }
  if (!first_ended) return;  // a name longer than the kept prefix
  std::size_t second = 0;
  const bool second_ended = field(first + 1, second);
  if (type == 'P') {
    e.kind = first == 0 ? StatementEvent::Kind::kText : StatementEvent::Kind::kPrepare;
    e.name = p;
    e.name_len = first;
    e.sql = p + first + 1;
    e.sql_len = second;
    e.cut = !second_ended;
    return statement(e);
  }
  // Bind: the unnamed statement was reported by its Parse.
  if (!second_ended || second == 0) return;
  e.kind = StatementEvent::Kind::kExecute;
  e.name = p + first + 1;
  e.name_len = second;
  statement(e);
}

void Conversation::pg_startup_packet(Feed& out) {
  const std::uint32_t length = be32(client_.buf);
  const std::uint32_t code = be32(client_.buf + 4);
  std::uint8_t await = kServerMessages;
  if (length == 8 && code == kSslRequest) {
    await = kServerAwaitSsl;
  } else if (length == 8 && code == kGssEncRequest) {
    await = kServerAwaitGss;
  } else if (is_startup(length, code)) {
    pg_confirm(out);
    pg_client_ = kClientMessages;
    return;
  } else if (pg_tentative_) {
    // SSLRequest, 'N', then a CancelRequest: a side connection, not a session.
    protocol_ = Protocol::kNotDatabase;
    pg_tentative_ = false;
    out.decided = true;
    out.cancel_request = is_side_request(length, code);
    return;
  } else {
    return go_blind(Blind::kLost, out);  // e.g. a CancelRequest inside a session
  }
  // The answer byte precedes any message: the server cannot be mid-message.
  if (!server_.at_start()) return go_blind(Blind::kLost, out);
  pg_server_ = await;
}

void Conversation::pg_server(const std::uint8_t* p, const std::uint8_t* end, Feed& out) {
  while (!done()) {
    if (pg_server_ != kServerMessages) {
      if (p == end) return;
      if (!pg_answer(p, out)) return;
      continue;
    }
    Framer::Step step = server_.step(p, end);
    if (step == Framer::Step::kNeedMore) return;
    if (step == Framer::Step::kHeader) {
      if (!pg_message_header(out)) return;
      continue;
    }
    pg_message(out);
    server_.next_packet();
  }
}

// The single unframed byte answering SSLRequest/GSSENCRequest. Returns false
// when nothing more can be followed.
bool Conversation::pg_answer(const std::uint8_t*& p, Feed& out) {
  const std::uint8_t accept = pg_server_ == kServerAwaitSsl ? 'S' : 'G';
  const std::uint8_t answer = *p;
  pg_server_ = kServerMessages;
  if (answer == accept) {
    pg_confirm(out);  // what follows is encrypted: a session, as far as anyone can tell
    go_blind(Blind::kEncrypted, out);
    return false;
  }
  if (answer == 'N') {  // plaintext: the client sends another startup packet
    ++p;
    return true;
  }
  if (answer == 'E') {  // an old server's ErrorResponse: a normal message
    pg_confirm(out);
    return true;
  }
  if (pg_tentative_) {  // an SSLRequest answered with nonsense: no PostgreSQL server
    pg_tentative_ = false;
    protocol_ = Protocol::kNotDatabase;
    out.decided = true;
    return false;
  }
  go_blind(Blind::kLost, out);
  return false;
}

// Validates a message header and says how much of the body to look at.
bool Conversation::pg_message_header(Feed& out) {
  const std::uint8_t type = server_.buf[0];
  const std::uint32_t length = be32(server_.buf + 1);  // includes itself
  bool ok = length >= 4 && length <= kMaxMessageLength;
  if (type == 'Z') ok = ok && length == 5;
  if (type == 'K') ok = ok && length >= 12;
  if (!ok) {
    go_blind(Blind::kLost, out);
    return false;
  }
  // An ErrorResponse's first fields (severity, SQLSTATE) fit in the buffer.
  const std::size_t prefix = type == 'Z' ? 1 : type == 'K' ? 4 : type == 'E' ? 64 : 0;
  server_.expect_payload(length - 4, prefix);
  return true;
}

void Conversation::pg_message(Feed& out) {
  const std::uint8_t type = server_.buf[0];
  const std::uint8_t* body = server_.payload();
  if (type == 'K') {
    out.server_id = be32(body);
  } else if (type == 'E') {
    // Fields: a code byte, then a NUL-terminated string; 'C' is the SQLSTATE.
    const std::size_t n = server_.prefix_len();
    for (std::size_t i = 0; i < n && body[i] != 0;) {
      std::size_t end = i + 1;
      while (end < n && body[end] != 0) ++end;
      if (end >= n) break;  // cut off by the buffer
      if (body[i] == 'C' && end - i - 1 == 5 && std::memcmp(body + i + 1, "53300", 5) == 0)
        out.refused = true;
      i = end + 1;
    }
  } else if (type == 'Z') {
    switch (body[0]) {
      case 'I':
        out.txn = TxnState::kIdle;
        break;
      case 'T':
        out.txn = TxnState::kInTransaction;
        break;
      case 'E':
        out.txn = TxnState::kInError;
        break;
      default:
        return go_blind(Blind::kLost, out);
    }
    out.has_txn = true;
  }
}

}  // namespace connleak::wire
