#pragma once
// Recognises a PostgreSQL or MySQL conversation from the bytes a client socket
// sends and receives, and follows the server's transaction state as it passes.
// Used by the shim's socket hooks for drivers that speak the wire protocol
// themselves (asyncpg, aiomysql, PyMySQL, pgx, JDBC, ...).
//
// Why bytes and not ports: pgbouncer listens on 6432, test servers anywhere,
// and unix sockets have no port at all. Each protocol opens in a way nothing
// else does: the PostgreSQL client speaks first (StartupMessage, SSLRequest,
// GSSENCRequest, CancelRequest; PostgreSQL 17 direct SSL is a TLS ClientHello
// with ALPN "postgresql"); the MySQL server speaks first (protocol-10 greeting).
// openGauss/GaussDB speak PostgreSQL's framing with their own protocol minor
// (3.50, 3.51) and authentication codes (SHA256 = 10, SM3 = 13, ...): the same
// parser follows them, as PostgreSQL (bodies of 'R' messages are skipped).
//
// Only headers and the first bytes of each packet are looked at: bodies are
// skipped by length, so a 1 MB result costs one hop per row packet. No
// allocation, fixed size, trivially resettable: one Conversation lives in a
// type-stable pool slot per socket. NOT thread-safe: the caller serialises
// client_sent/client_received for one Conversation.
#include <cstddef>
#include <cstdint>

#include "collector/core/live_state.h"

namespace connleak::wire {

enum class Protocol : std::uint8_t { kUndecided = 0, kNotDatabase, kPostgres, kMysql };
const char* protocol_name(Protocol p);  // "postgresql" | "mysql" | "" otherwise

// Why the transaction state can no longer be followed (kNone while it can).
enum class Blind : std::uint8_t {
  kNone = 0,
  kEncrypted,   // TLS/GSS negotiated: the bytes are ciphertext
  kCompressed,  // MySQL compression protocol
  kLost,        // bytes that contradict the protocol (or a stream we cannot follow)
};
const char* blind_reason(Blind b);  // "encrypted" | "compressed" | "unparsed" | ""

// What one call's bytes changed. Fields are "latest wins" within the call.
struct Feed {
  bool decided = false;         // the protocol was decided by these bytes (see protocol())
  bool cancel_request = false;  // CancelRequest / openGauss StopRequest: a side connection
  bool went_blind = false;      // from now on the state cannot be followed (see blind())
  bool has_txn = false;         // `txn` holds a state the server reported
  TxnState txn = TxnState::kUnknown;
  std::int64_t server_id = -1;  // PostgreSQL BackendKeyData pid / MySQL connection id, once
  // The client sent, outside a transaction, a command that may begin one
  // (PostgreSQL: BEGIN / START TRANSACTION; MySQL: those, or any statement
  // while autocommit is off). The caller takes the stacks now: the server's
  // confirmation is read later, often on another stack (an event loop's).
  bool may_begin = false;
  // The client said goodbye (PostgreSQL Terminate, MySQL COM_QUIT): the
  // program's close starts here, even when the descriptor's close() comes
  // later from an event loop's callback with none of the program's frames.
  bool closing = false;
  // The server refused the session for want of connection slots (PostgreSQL
  // ErrorResponse with SQLSTATE 53300, "too many clients"; MySQL ERR 1040
  // instead of the greeting, or 1203/1226 after the handshake response).
  bool refused = false;
  std::uint16_t refused_code = 0;  // MySQL's error code when refused; 0 for PostgreSQL
};

// What a MySQL refusal (Feed::refused_code: 1040, 1203, 1226) means, for the
// server_refused snapshot; the same words as the MySQL client library path.
const char* mysql_refusal_text(std::uint16_t code);

// A statement the client sent (option statements), reported while its bytes
// are parsed: one send may carry several (asyncpg writes Parse, Bind, Execute
// and Sync at once), and the pointers are only valid during the call.
struct StatementEvent {
  enum class Kind : std::uint8_t {
    kText,     // SQL sent to run now (Query, unnamed Parse, COM_QUERY)
    kPrepare,  // PostgreSQL named Parse: `name` will be executed later
    kExecute,  // PostgreSQL Bind of a named statement, MySQL COM_STMT_EXECUTE (`name`: its id)
    // MySQL COM_STMT_PREPARE: the SQL being prepared; the server names it in
    // its answer (kPrepared), so the client's packet carries no id.
    kPrepareText,
    kPrepared,  // MySQL COM_STMT_PREPARE_OK: `name` = the id of the last kPrepareText
  };
  Kind kind = Kind::kText;
  const std::uint8_t* sql = nullptr;
  std::size_t sql_len = 0;
  bool cut = false;  // only the first bytes of the SQL were kept
  const std::uint8_t* name = nullptr;
  std::size_t name_len = 0;
};
using StatementSink = void (*)(void* ctx, const StatementEvent& event);

// True when SQL text (its first bytes; the rest may be cut off) begins a
// transaction: BEGIN or START TRANSACTION, after blanks and /* comments */.
bool starts_transaction(const std::uint8_t* sql, std::size_t n);

class Conversation {
 public:
  // Bytes the client wrote (send, write, sendmsg, ...): exactly the bytes the
  // call transferred, in order.
  Feed client_sent(const std::uint8_t* data, std::size_t n);
  // Bytes the client read (recv, read, recvmsg, ...), not MSG_PEEK'd ones.
  Feed client_received(const std::uint8_t* data, std::size_t n);

  Protocol protocol() const { return protocol_; }
  Blind blind() const { return blind_; }
  // True once nothing more can be learned: the hooks stop looking at this
  // socket's bytes (not a database, or blind).
  bool done() const { return protocol_ == Protocol::kNotDatabase || blind_ != Blind::kNone; }
  // Which directions still need to be seen (the hook skips the other one).
  bool wants_sent() const;
  bool wants_received() const;

  void reset() {
    StatementSink sink = sink_;
    void* ctx = sink_ctx_;
    *this = Conversation();
    set_statement_sink(sink, ctx);
  }
  // Where statements go; none by default. Kept across reset().
  void set_statement_sink(StatementSink sink, void* ctx) {
    sink_ = sink;
    sink_ctx_ = ctx;
  }

 private:
  // Implementation state (wire_protocol.cpp, wire_postgres.cpp, wire_mysql.cpp).
  // Plain data, fixed size.

  // Frames one direction's byte stream into packets: a fixed-size header,
  // then the first bytes of the payload (both kept in `buf`), then the rest
  // of the payload passed over by count.
  struct Framer {
    enum class Step : std::uint8_t { kNeedMore, kHeader, kPacket };
    std::uint8_t buf[216] = {};  // header, then the payload's first bytes (SQL: a bounded copy)
    std::uint8_t hdr = 0;        // header size (0 until the protocol is known)
    std::uint8_t have = 0;       // bytes in buf
    std::uint8_t want = 0;       // bytes buf must hold before the next step
    bool in_payload = false;     // the header is complete
    bool continued = false;      // MySQL: the previous packet was 0xFFFFFF long
    std::uint32_t body = 0;      // payload length, from the header
    std::uint32_t skip = 0;      // payload bytes still to pass over

    void start(std::uint8_t header_size);
    Step step(const std::uint8_t*& p, const std::uint8_t* end);
    void expect_payload(std::uint32_t len, std::size_t prefix);
    void next_packet();
    bool at_start() const { return have == 0 && skip == 0 && !in_payload; }
    const std::uint8_t* payload() const { return buf + hdr; }
    std::size_t prefix_len() const { return static_cast<std::size_t>(have - hdr); }
  };
  // MySQL: consecutive commands awaiting the same kind of response (a client
  // may pipeline several commands before reading the answers).
  struct Pending {
    std::uint8_t kind = 0;
    std::uint32_t count = 0;
  };

  void decide(Protocol p, Feed& out);
  void go_blind(Blind why, Feed& out);
  Feed consume(bool sent, const std::uint8_t* data, std::size_t n);
  std::size_t classify(bool sent, const std::uint8_t* data, std::size_t n, Feed& out);
  void replay_first(bool sent, Feed& out);
  void feed_protocol(bool sent, const std::uint8_t* p, const std::uint8_t* end, Feed& out);

  // PostgreSQL (wire_postgres.cpp)
  void pg_classify(const std::uint8_t* data, std::size_t n, Feed& out);
  void pg_classify_tls(const std::uint8_t* data, std::size_t n, Feed& out);
  void pg_client(const std::uint8_t* p, const std::uint8_t* end, Feed& out);
  void pg_startup_packet(Feed& out);
  void pg_client_message(Feed& out);
  void pg_statement(std::uint8_t type);
  void pg_confirm(Feed& out);
  void pg_server(const std::uint8_t* p, const std::uint8_t* end, Feed& out);
  bool pg_answer(const std::uint8_t*& p, Feed& out);
  bool pg_message_header(Feed& out);
  void pg_message(Feed& out);

  // MySQL (wire_mysql.cpp)
  void my_classify(Feed& out);
  void my_server(const std::uint8_t* p, const std::uint8_t* end, Feed& out);
  void my_client(const std::uint8_t* p, const std::uint8_t* end, Feed& out);
  void my_greeting();
  void my_handshake_response(Feed& out);
  void my_command(Feed& out);
  void my_push(std::uint8_t kind, Feed& out);
  void my_pop();
  void my_begin_response();
  void my_response(Feed& out);
  int my_status(bool eof_format, Feed& out);
  void my_result_packet(Feed& out);
  void my_result_start(Feed& out);
  void my_prepare_packet(Feed& out);

  bool in_transaction() const {
    return last_txn_ == TxnState::kInTransaction || last_txn_ == TxnState::kInError;
  }

  Protocol protocol_ = Protocol::kUndecided;
  TxnState last_txn_ = TxnState::kUnknown;  // the server's latest report
  bool my_autocommit_ = true;               // MySQL: SERVER_STATUS_AUTOCOMMIT, latest report
  Blind blind_ = Blind::kNone;
  std::uint8_t first_[96] = {};  // bytes held until the protocol is decided
  std::uint8_t first_len_ = 0;
  std::uint8_t first_dir_ = 0;  // who spoke first: 1 client, 2 server
  std::uint8_t pg_client_ = 0;  // PostgreSQL client: startup packets / done
  bool pg_tentative_ = false;   // PostgreSQL: SSL/GSSENC request seen, session not yet confirmed
  // A client that opens with a TLS record (PostgreSQL 17 direct SSL): how many
  // of its bytes were scanned for the ALPN name and how much of the name the
  // last ones matched. Kept across calls so the decision does not depend on
  // where the socket split the ClientHello.
  std::uint8_t tls_match_ = 0;
  std::uint16_t tls_seen_ = 0;
  std::uint8_t pg_server_ = 0;  // PostgreSQL server: messages / awaiting the SSL or GSS answer
  std::uint8_t my_phase_ = 0;   // MySQL: greeting / handshake response / commands
  std::uint8_t my_resp_ = 0;    // MySQL: where the oldest pending response is
  std::uint8_t my_queue_len_ = 0;
  bool my_infile_ = false;                      // MySQL: the client is uploading a LOCAL INFILE
  std::uint32_t my_server_caps_ = 0xFFFFFFFFu;  // all set while the greeting's are unknown
  std::uint32_t my_client_caps_ = 0;            // effective: client's & server's
  std::uint32_t my_left_ = 0;                   // MySQL: packets left in this part of the response
  Pending my_queue_[8] = {};                    // MySQL: commands awaiting a response, oldest first
  Framer client_;
  Framer server_;
  StatementSink sink_ = nullptr;
  void* sink_ctx_ = nullptr;
  void statement(const StatementEvent& e) {
    if (sink_) sink_(sink_ctx_, e);
  }
};

}  // namespace connleak::wire
