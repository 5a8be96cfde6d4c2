// MySQL / MariaDB: greeting, handshake response, then commands and their
// responses. Every packet both ways is a 3-byte little-endian payload length,
// a sequence id and the payload.
//
// The transaction state is in the status flags of OK and EOF packets. The
// hard part is knowing which packets are OK/EOF: a result set's rows may
// start with 0x00 or 0xFE, so each command's response is followed through its
// parts (column count, column definitions, rows, terminator). Commands the
// client pipelines before reading the answers wait in a small queue.
#include <cstring>

#include "collector/wire/wire_protocol.h"

namespace connleak::wire {

namespace {

// my_phase_
constexpr std::uint8_t kGreeting = 0;   // the server's greeting is being framed
constexpr std::uint8_t kHandshake = 1;  // the client's HandshakeResponse is next
constexpr std::uint8_t kCommands = 2;   // authentication, then commands

// Pending::kind: the shape of the response a command gets.
constexpr std::uint8_t kNoResponse = 0;  // COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA
constexpr std::uint8_t kAuth = 1;        // until OK or ERR (handshake, COM_CHANGE_USER)
constexpr std::uint8_t kResultSet = 2;   // OK | ERR | LOCAL INFILE | result set(s)
constexpr std::uint8_t kSimple = 3;      // one OK | EOF | ERR
constexpr std::uint8_t kPrepare = 4;     // COM_STMT_PREPARE_OK and its definitions, or ERR
constexpr std::uint8_t kRows = 5;        // rows until a terminator (COM_STMT_FETCH, COM_FIELD_LIST)
constexpr std::uint8_t kOnePacket = 6;   // one packet with no status (COM_STATISTICS)
constexpr std::uint8_t kUnknown = 7;     // ignored until the client's next command

// my_resp_: where the oldest pending response is.
constexpr std::uint8_t kRespStart = 0;
constexpr std::uint8_t kRespColumns = 1;      // my_left_ column definitions to go
constexpr std::uint8_t kRespColumnsEof = 2;   // the EOF after the column definitions
constexpr std::uint8_t kRespRows = 3;         // rows until EOF/OK(0xFE) or ERR
constexpr std::uint8_t kRespDefinitions = 4;  // COM_STMT_PREPARE: my_left_ packets to go

constexpr std::uint32_t kClientCompress = 0x20;
constexpr std::uint32_t kClientProtocol41 = 0x200;
constexpr std::uint32_t kClientSsl = 0x800;
constexpr std::uint32_t kClientDeprecateEof = 1u << 24;
constexpr std::uint8_t kComQuit = 0x01;
constexpr std::uint8_t kComQuery = 0x03;
constexpr std::uint8_t kComStmtExecute = 0x17;
constexpr std::uint8_t kComStmtPrepare = 0x16;
constexpr int kStatusInTrans = 0x0001;
constexpr int kStatusAutocommit = 0x0002;
constexpr int kStatusMoreResults = 0x0008;
constexpr int kStatusCursorExists = 0x0040;

constexpr std::uint32_t kFullPacket = 0xFFFFFF;  // continued in the next packet
constexpr std::uint64_t kMaxColumns = 65535;
constexpr std::size_t kGreetingPrefix = 80;   // up to the capability flags after the version
constexpr std::size_t kHandshakePrefix = 32;  // capability flags ... filler
constexpr std::size_t kResponsePrefix = 24;   // an OK packet up to its status flags
constexpr std::size_t kCommandPrefix =
    216;  // the command byte, then the SQL's first bytes (bounded)

std::uint32_t le16(const std::uint8_t* p) {
  return p[0] | (std::uint32_t{p[1]} << 8);
}
std::uint32_t le24(const std::uint8_t* p) {
  return le16(p) | (std::uint32_t{p[2]} << 16);
}
std::uint32_t le32(const std::uint8_t* p) {
  return le24(p) | (std::uint32_t{p[3]} << 24);
}

// Bytes taken by a length-encoded integer whose first byte is `b` (0: none).
std::size_t lenenc_size(std::uint8_t b) {
  if (b < 0xFB) return 1;
  if (b == 0xFC) return 3;
  if (b == 0xFD) return 4;
  if (b == 0xFE) return 9;
  return 0;
}

std::uint64_t lenenc_value(const std::uint8_t* p) {
  const std::size_t size = lenenc_size(p[0]);
  if (size == 1) return p[0];
  std::uint64_t v = 0;
  for (std::size_t i = size - 1; i >= 1; --i) v = (v << 8) | p[i];
  return v;
}

// clang-format off
std::uint8_t response_kind(std::uint8_t command) {
  switch (command) {
    case 0x01: case 0x18: case 0x19:  // quit, stmt send long data, stmt close
      return kNoResponse;
    case 0x11:  // change user
      return kAuth;
    case 0x03: case 0x17: case 0x0a: case 0xfa:  // query, stmt execute, process info, bulk execute
      return kResultSet;
    case 0x02: case 0x05: case 0x06: case 0x07:  // init db, create db, drop db, refresh
    case 0x08: case 0x0c: case 0x0d: case 0x0e:  // shutdown, process kill, debug, ping
    case 0x1a: case 0x1b: case 0x1f:             // stmt reset, set option, reset connection
      return kSimple;
    case 0x16:  // stmt prepare
      return kPrepare;
    case 0x04: case 0x1c:  // field list, stmt fetch
      return kRows;
    case 0x09:  // statistics
      return kOnePacket;
    default:  // binlog dump, register slave, daemon, ...
      return kUnknown;
  }
}
// clang-format on

// MariaDB progress reports arrive as ERR packets with error code 0xFFFF while a
// statement runs; they end nothing.
bool is_progress(const std::uint8_t* pl, std::size_t n) {
  return n >= 3 && le16(pl + 1) == 0xFFFF;
}

// The errors of a server out of connection slots: 1040 too many connections
// (sent instead of the greeting), 1203 and 1226 max_user_connections (MySQL's
// and MariaDB's, sent after the handshake response).
bool is_refusal(std::uint32_t code) {
  return code == 1040 || code == 1203 || code == 1226;
}

}  // namespace

const char* mysql_refusal_text(std::uint16_t code) {
  switch (code) {
    case 1040:
      return "MySQL error 1040: Too many connections";
    case 1203:
      return "MySQL error 1203: the user has too many connections (max_user_connections)";
    case 1226:
      return "MySQL error 1226: the account has reached its connection limit "
             "(MAX_USER_CONNECTIONS)";
    default:
      return "MySQL: the server refused the connection";
  }
}

// The server's greeting: protocol 10, a NUL-terminated printable version,
// then the connection id. Decides once the id is in (or first_ is full).
void Conversation::my_classify(Feed& out) {
  const std::uint8_t* b = first_;
  const std::size_t n = first_len_;
  if (n < 4) return;
  const std::size_t payload_end = 4 + std::size_t{le24(b)};
  // A full server answers with an ERR instead of its greeting (pure-Python
  // drivers, PyMySQL / aiomysql, show it only as their own exception): the
  // session is MySQL's, refused. Any other ERR here stays "not a database".
  if (b[3] == 0 && payload_end >= 4 + 3 && payload_end <= 4 + 1024) {
    if (n < 7) return;
    if (b[4] == 0xFF && is_refusal(le16(b + 5))) {
      out.refused = true;
      out.refused_code = static_cast<std::uint16_t>(le16(b + 5));
      return decide(Protocol::kMysql, out);
    }
  }
  if (b[3] != 0 || payload_end < 4 + 20 || payload_end > 4 + 1024)
    return decide(Protocol::kNotDatabase, out);
  if (n < 5) return;
  if (b[4] != 10)
    return decide(Protocol::kNotDatabase, out);  // also 0xFF: an ERR ("Host is blocked")
  for (std::size_t i = 5; i < n; ++i) {
    if (b[i] == 0) {
      if (i == 5 || i + 5 > payload_end) return decide(Protocol::kNotDatabase, out);
      if (i + 5 > n) break;
      decide(Protocol::kMysql, out);
      out.server_id = le32(b + i + 1);
      return;
    }
    if (b[i] < 0x20 || b[i] > 0x7E || i + 1 >= payload_end)
      return decide(Protocol::kNotDatabase, out);
  }
  // Everything so far fits a greeting and nothing more can be held.
  if (n == sizeof first_) decide(Protocol::kMysql, out);
}

void Conversation::my_server(const std::uint8_t* p, const std::uint8_t* end, Feed& out) {
  while (!done()) {
    Framer::Step step = server_.step(p, end);
    if (step == Framer::Step::kNeedMore) return;
    if (step == Framer::Step::kHeader) {
      const std::size_t prefix = server_.continued        ? 0
                                 : my_phase_ == kGreeting ? kGreetingPrefix
                                                          : kResponsePrefix;
      server_.expect_payload(le24(server_.buf), prefix);
      continue;
    }
    // The tail of a packet split at 16 MB is payload, never a header.
    if (!server_.continued) {
      if (my_phase_ == kGreeting)
        my_greeting();
      else if (my_phase_ == kCommands)
        my_response(out);
      // kHandshake: nothing until the client answers (an ERR here ends the session)
    }
    server_.next_packet();
  }
}

void Conversation::my_client(const std::uint8_t* p, const std::uint8_t* end, Feed& out) {
  while (!done()) {
    Framer::Step step = client_.step(p, end);
    if (step == Framer::Step::kNeedMore) return;
    if (step == Framer::Step::kHeader) {
      const std::size_t prefix = client_.continued         ? 0
                                 : my_phase_ == kHandshake ? kHandshakePrefix
                                                           : kCommandPrefix;
      client_.expect_payload(le24(client_.buf), prefix);
      continue;
    }
    if (!client_.continued) {
      if (my_phase_ == kHandshake)
        my_handshake_response(out);
      else if (my_phase_ == kCommands)
        my_command(out);
    }
    client_.next_packet();
  }
}

// Keeps the server's capability flags: DEPRECATE_EOF and COMPRESS are in
// effect only when both sides set them.
void Conversation::my_greeting() {
  my_phase_ = kHandshake;
  const std::uint8_t* pl = server_.payload();
  const std::size_t n = server_.prefix_len();
  const void* nul = n > 1 ? std::memchr(pl + 1, 0, n - 1) : nullptr;
  if (!nul) return;
  // After the version: connection id 4, auth data 8, filler 1, capabilities
  // (low 2), charset 1, status 2, capabilities (high 2).
  const std::size_t v = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - pl);
  if (v + 21 <= n) my_server_caps_ = le16(pl + v + 14) | (le16(pl + v + 19) << 16);
}

void Conversation::my_handshake_response(Feed& out) {
  if (client_.prefix_len() < 4) return go_blind(Blind::kLost, out);
  std::uint32_t caps = le32(client_.payload());
  // CLIENT_SSL: a TLS handshake follows. It is normally set in the short
  // (32-byte) SSLRequest packet, but the server switches on the flag alone.
  if (caps & kClientSsl) return go_blind(Blind::kEncrypted, out);
  if (!(caps & kClientProtocol41))
    return go_blind(Blind::kLost, out);  // pre-4.1 packets: not followed
  caps &= my_server_caps_;
  if (caps & kClientCompress) return go_blind(Blind::kCompressed, out);
  my_client_caps_ = caps;
  my_phase_ = kCommands;
  my_push(kAuth, out);
}

// A client packet in the command phase: a new command when its sequence id
// is 0, otherwise a later packet of the current exchange (auth data).
void Conversation::my_command(Feed& out) {
  if (my_infile_) {  // LOCAL INFILE contents end with an empty packet
    if (client_.body == 0) my_infile_ = false;
    return;
  }
  if (client_.buf[3] != 0 || client_.body == 0) return;
  const std::uint8_t command = client_.payload()[0];
  if (command == kComQuit) out.closing = true;
  if (sink_ && (command == kComQuery || command == kComStmtPrepare || command == kComStmtExecute)) {
    StatementEvent e;
    const std::uint8_t* body = client_.payload() + 1;
    const std::size_t n = client_.prefix_len() - 1;
    if (command == kComStmtExecute) {
      if (n < 4) return my_push(response_kind(command), out);
      e.kind = StatementEvent::Kind::kExecute;
      e.name = body;  // the statement id
      e.name_len = 4;
    } else {
      if (command == kComStmtPrepare) e.kind = StatementEvent::Kind::kPrepareText;
      e.sql = body;
      e.sql_len = n;
      e.cut = client_.prefix_len() < client_.body;
    }
    statement(e);
  }
  // Outside a transaction, BEGIN starts one, and with autocommit off so does
  // any statement.
  if (!in_transaction() && (command == kComQuery || command == kComStmtExecute)) {
    const bool begins =
        command == kComQuery && starts_transaction(client_.payload() + 1, client_.prefix_len() - 1);
    if (!my_autocommit_ || begins) out.may_begin = true;
  }
  my_push(response_kind(command), out);
}

void Conversation::my_push(std::uint8_t kind, Feed& out) {
  // An unknown response's length is unknown: it is taken to end when the
  // client sends its next command.
  if (my_queue_len_ > 0 && my_queue_[my_queue_len_ - 1].kind == kUnknown) {
    --my_queue_len_;
    if (my_queue_len_ == 0) my_begin_response();
  }
  if (kind == kNoResponse) return;
  if (my_queue_len_ > 0 && my_queue_[my_queue_len_ - 1].kind == kind && kind != kUnknown) {
    ++my_queue_[my_queue_len_ - 1].count;
    return;
  }
  if (my_queue_len_ == sizeof my_queue_ / sizeof my_queue_[0]) return go_blind(Blind::kLost, out);
  my_queue_[my_queue_len_++] = Pending{kind, 1};
  if (my_queue_len_ == 1) my_begin_response();
}

void Conversation::my_pop() {
  if (my_queue_len_ == 0) return;
  if (--my_queue_[0].count == 0) {
    for (std::uint8_t i = 1; i < my_queue_len_; ++i) my_queue_[i - 1] = my_queue_[i];
    --my_queue_len_;
  }
  my_begin_response();
}

void Conversation::my_begin_response() {
  my_resp_ = my_queue_len_ > 0 && my_queue_[0].kind == kRows ? kRespRows : kRespStart;
  my_left_ = 0;
}

// A server packet in the command phase, for the oldest pending command.
void Conversation::my_response(Feed& out) {
  if (my_queue_len_ == 0) return;  // unsolicited: e.g. an ERR before an idle session is closed
  const std::uint8_t kind = my_queue_[0].kind;
  if (kind == kUnknown) return;
  if (kind == kOnePacket) return my_pop();
  if (server_.body == 0) return go_blind(Blind::kLost, out);  // no response packet is empty
  const std::uint8_t header = server_.payload()[0];
  if (header == 0xFF && is_progress(server_.payload(), server_.prefix_len())) return;
  switch (kind) {
    case kAuth:
      if (header == 0x00) {
        if (my_status(false, out) < 0) return;
      } else if (header != 0xFF) {
        return;  // 0xFE switches the auth method, 0x01 carries more auth data
      } else if (server_.prefix_len() >= 3 && is_refusal(le16(server_.payload() + 1))) {
        out.refused = true;  // the account's connection limit (1203/1226), or 1040
        out.refused_code = static_cast<std::uint16_t>(le16(server_.payload() + 1));
      }
      return my_pop();
    case kSimple:
      if (header == 0x00 || header == 0xFE) {
        if (my_status(header == 0xFE && !(my_client_caps_ & kClientDeprecateEof), out) < 0) return;
      } else if (header != 0xFF) {
        return go_blind(Blind::kLost, out);
      }
      return my_pop();
    case kPrepare:
      return my_prepare_packet(out);
    default:
      return my_result_packet(out);
  }
}

// Reads the status flags of an OK packet (header, lenenc affected rows,
// lenenc last insert id, status) or an EOF packet (header, warnings,
// status); reports the transaction state. Returns the flags, or -1 (and
// goes blind) when the packet is too short to hold them.
int Conversation::my_status(bool eof_format, Feed& out) {
  const std::uint8_t* pl = server_.payload();
  const std::size_t n = server_.prefix_len();
  std::size_t pos = eof_format ? 3 : 1;
  for (int i = 0; !eof_format && i < 2 && pos < n; ++i) {
    const std::size_t k = lenenc_size(pl[pos]);
    pos = k == 0 ? n : pos + k;
  }
  if (pos + 2 > n) {
    go_blind(Blind::kLost, out);
    return -1;
  }
  const int status = static_cast<int>(le16(pl + pos));
  out.has_txn = true;
  out.txn = (status & kStatusInTrans) ? TxnState::kInTransaction : TxnState::kIdle;
  my_autocommit_ = (status & kStatusAutocommit) != 0;
  return status;
}

void Conversation::my_result_packet(Feed& out) {
  const std::uint8_t* pl = server_.payload();
  const std::uint8_t header = pl[0];
  const bool deprecate_eof = (my_client_caps_ & kClientDeprecateEof) != 0;
  switch (my_resp_) {
    case kRespStart:
      return my_result_start(out);
    case kRespColumns:
      if (--my_left_ == 0) my_resp_ = deprecate_eof ? kRespRows : kRespColumnsEof;
      return;
    case kRespColumnsEof: {
      if (header != 0xFE || server_.body >= 9) return go_blind(Blind::kLost, out);
      const int status = my_status(true, out);
      // An execute that opened a cursor sends no rows: COM_STMT_FETCH will.
      if (status < 0) return;
      if (status & kStatusCursorExists)
        my_pop();
      else
        my_resp_ = kRespRows;
      return;
    }
    default: {  // rows; a 0xFE packet shorter than 16 MB is the terminator
      if (header == 0xFF) return my_pop();
      if (header != 0xFE || server_.body >= kFullPacket) return;
      const int status = my_status(!deprecate_eof, out);
      if (status < 0) return;
      if (status & kStatusMoreResults)
        my_begin_response();  // the next result's header follows
      else
        my_pop();
      return;
    }
  }
}

// The first packet of a COM_QUERY / COM_STMT_EXECUTE response.
void Conversation::my_result_start(Feed& out) {
  const std::uint8_t* pl = server_.payload();
  const std::size_t n = server_.prefix_len();
  switch (pl[0]) {
    case 0x00: {
      const int status = my_status(false, out);
      if (status >= 0 && !(status & kStatusMoreResults)) my_pop();  // else another response follows
      return;
    }
    case 0xFF:
      return my_pop();
    case 0xFB:
      my_infile_ = true;
      return;  // the client uploads a file, then OK/ERR
    case 0xFE:
      return go_blind(Blind::kLost, out);
    default:
      break;
  }
  const std::size_t k = lenenc_size(pl[0]);  // the column count
  const std::uint64_t columns = k != 0 && k <= n ? lenenc_value(pl) : 0;
  if (columns == 0 || columns > kMaxColumns) return go_blind(Blind::kLost, out);
  // MariaDB metadata caching / MySQL optional metadata add a byte after the
  // count: 0 means the column definitions are left out.
  const bool metadata = !(server_.body == k + 1 && n > k && pl[k] == 0);
  const bool deprecate_eof = (my_client_caps_ & kClientDeprecateEof) != 0;
  my_left_ = static_cast<std::uint32_t>(columns);
  my_resp_ = metadata ? kRespColumns : deprecate_eof ? kRespRows : kRespColumnsEof;
}

// COM_STMT_PREPARE_OK starts with 0x00 like an OK packet but is not one: it
// holds the statement id and the numbers of columns and parameters, whose
// definitions follow (each group closed by an EOF without DEPRECATE_EOF).
void Conversation::my_prepare_packet(Feed& out) {
  if (my_resp_ == kRespDefinitions) {
    if (--my_left_ == 0) my_pop();
    return;
  }
  const std::uint8_t* pl = server_.payload();
  const std::size_t n = server_.prefix_len();
  if (pl[0] == 0xFF) return my_pop();
  if (pl[0] != 0x00 || n < 9) return go_blind(Blind::kLost, out);
  if (sink_) {
    StatementEvent e;
    e.kind = StatementEvent::Kind::kPrepared;
    e.name = pl + 1;  // the statement id COM_STMT_EXECUTE will carry
    e.name_len = 4;
    statement(e);
  }
  std::uint32_t columns = le16(pl + 5);
  std::uint32_t params = le16(pl + 7);
  if (server_.body >= 13 && n >= 13 && pl[12] == 0) columns = params = 0;  // metadata left out
  const std::uint32_t eof = (my_client_caps_ & kClientDeprecateEof) ? 0 : 1;
  my_left_ = params + (params ? eof : 0) + columns + (columns ? eof : 0);
  if (my_left_ == 0) return my_pop();
  my_resp_ = kRespDefinitions;
}

}  // namespace connleak::wire
