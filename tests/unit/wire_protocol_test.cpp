#include "collector/wire/wire_protocol.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace connleak::wire {
namespace {

using namespace std::string_literals;
using Bytes = std::vector<std::uint8_t>;

// One read or write as the client saw it, in conversation order.
struct Msg {
  bool sent;  // client -> server
  Bytes bytes;
};
using Transcript = std::vector<Msg>;

Msg sent(Bytes b) {
  return Msg{true, std::move(b)};
}
Msg received(Bytes b) {
  return Msg{false, std::move(b)};
}

Bytes str(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes be32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

Bytes le(std::uint64_t v, int n) {
  Bytes out;
  for (int i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  return out;
}

// --- what a replay observed ---------------------------------------------------

char state_letter(TxnState s) {
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

struct Outcome {
  Protocol protocol = Protocol::kUndecided;
  Blind blind = Blind::kNone;
  std::int64_t server_id = -1;  // latest reported
  bool cancel_request = false;
  int decided = 0;     // calls that reported `decided` (must be at most 1)
  int went_blind = 0;  // calls that reported `went_blind` (must be at most 1)
  std::string states;  // reported transaction states, consecutive repeats folded: "ITEI"
  int may_begin = -1;  // calls that reported `may_begin`; -1 in an expectation: not checked

  bool operator==(const Outcome& o) const {
    return protocol == o.protocol && blind == o.blind && server_id == o.server_id &&
           cancel_request == o.cancel_request && decided == o.decided &&
           went_blind == o.went_blind && states == o.states &&
           (may_begin < 0 || o.may_begin < 0 || may_begin == o.may_begin);
  }
};

void PrintTo(const Outcome& o, std::ostream* os) {
  *os << "{protocol=" << int(o.protocol) << " blind=" << blind_reason(o.blind)
      << " server_id=" << o.server_id << " cancel=" << o.cancel_request << " decided=" << o.decided
      << " went_blind=" << o.went_blind << " states=\"" << o.states
      << "\" may_begin=" << o.may_begin << "}";
}

// Feeds one call's bytes from an exact-size heap copy, so that ASan catches
// any read past the end of what the call was given.
void feed(Conversation& conv, Outcome& o, bool is_sent, const std::uint8_t* p, std::size_t n) {
  const Bytes copy(p, p + n);
  const Feed f = is_sent ? conv.client_sent(copy.data(), n) : conv.client_received(copy.data(), n);
  o.decided += f.decided;
  o.went_blind += f.went_blind;
  o.may_begin = (o.may_begin < 0 ? 0 : o.may_begin) + f.may_begin;
  o.cancel_request |= f.cancel_request;
  if (f.server_id >= 0) o.server_id = f.server_id;
  if (f.has_txn && (o.states.empty() || o.states.back() != state_letter(f.txn)))
    o.states += state_letter(f.txn);
  o.protocol = conv.protocol();
  o.blind = conv.blind();
}

enum class Split { kWhole, kBytes, kRandom };

// Replays a transcript, each message as one call (kWhole), one call per byte
// (kBytes) or cut at random points (kRandom, fixed seed). Messages are only
// ever split, never merged: that is what a socket does to one write.
Outcome replay(const Transcript& t, Split split, std::uint32_t seed = 1,
               Conversation* out_conv = nullptr) {
  Conversation local;
  Conversation& conv = out_conv ? *out_conv : local;
  Outcome o;
  std::mt19937 rng(seed);
  for (const Msg& m : t) {
    std::size_t i = 0;
    while (i < m.bytes.size()) {
      std::size_t n = m.bytes.size() - i;
      if (split == Split::kBytes) n = 1;
      if (split == Split::kRandom) n = std::min<std::size_t>(n, 1 + rng() % (rng() % 2 ? 7 : 300));
      feed(conv, o, m.sent, m.bytes.data() + i, n);
      i += n;
    }
  }
  return o;
}

// The same transcript must give the same outcome however it is chunked.
void expect_replay(const Transcript& t, const Outcome& want) {
  {
    SCOPED_TRACE("one call per message");
    EXPECT_EQ(replay(t, Split::kWhole), want);
  }
  {
    SCOPED_TRACE("one call per byte");
    EXPECT_EQ(replay(t, Split::kBytes), want);
  }
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("random split, seed " + std::to_string(seed));
    EXPECT_EQ(replay(t, Split::kRandom, seed), want);
  }
}

Outcome postgres(std::string states, std::int64_t pid = -1, Blind blind = Blind::kNone) {
  Outcome o;
  o.protocol = Protocol::kPostgres;
  o.decided = 1;
  o.server_id = pid;
  o.states = std::move(states);
  o.blind = blind;
  o.went_blind = blind != Blind::kNone;
  return o;
}

Outcome mysql(std::string states, std::int64_t id, Blind blind = Blind::kNone) {
  Outcome o = postgres(std::move(states), id, blind);
  o.protocol = Protocol::kMysql;
  return o;
}

Outcome not_database(bool cancel = false) {
  Outcome o;
  o.protocol = Protocol::kNotDatabase;
  o.decided = 1;
  o.cancel_request = cancel;
  return o;
}

// --- PostgreSQL messages --------------------------------------------------------

constexpr std::uint32_t kPgPid = 4242;

Bytes pg_msg(char type, const Bytes& body) {
  return cat(
      {{static_cast<std::uint8_t>(type)}, be32(static_cast<std::uint32_t>(body.size() + 4)), body});
}
Bytes pg_startup() {
  Bytes params = str("user\0postgres\0database\0postgres\0\0"s);
  return cat({be32(static_cast<std::uint32_t>(8 + params.size())), be32(196608), params});
}
Bytes pg_request(std::uint32_t code) {
  return cat({be32(8), be32(code)});
}
Bytes pg_ssl_request() {
  return pg_request(80877103);
}
Bytes pg_gss_request() {
  return pg_request(80877104);
}
Bytes pg_ready(char status) {
  return pg_msg('Z', {static_cast<std::uint8_t>(status)});
}
Bytes pg_query(const std::string& sql) {
  return pg_msg('Q', str(sql + '\0'));
}
Bytes pg_command_complete(const std::string& tag) {
  return pg_msg('C', str(tag + '\0'));
}

// AuthenticationOk, a ParameterStatus, BackendKeyData, ReadyForQuery(I).
Bytes pg_login_ok() {
  return cat({pg_msg('R', be32(0)),
              pg_msg('S', str("server_version\0"
                              "15.0\0"s)),
              pg_msg('K', cat({be32(kPgPid), be32(0xDEADBEEF)})), pg_ready('I')});
}

Transcript pg_session_start() {
  return {sent(pg_startup()), received(pg_login_ok())};
}

// --- MySQL packets --------------------------------------------------------------

constexpr std::uint32_t kMyConnId = 77;
constexpr std::uint32_t kProtocol41 = 0x200;
constexpr std::uint32_t kSecureConnection = 0x8000;
constexpr std::uint32_t kPluginAuth = 1u << 19;
constexpr std::uint32_t kMultiResults = 1u << 17;
constexpr std::uint32_t kCompress = 0x20;
constexpr std::uint32_t kSsl = 0x800;
constexpr std::uint32_t kDeprecateEof = 1u << 24;
constexpr std::uint32_t kServerCaps = 0xFFFFFFFFu & ~(1u << 31);
constexpr std::uint32_t kClientCaps =
    kProtocol41 | kSecureConnection | kPluginAuth | kMultiResults | 0x1 | 0x2000;
constexpr std::uint16_t kIdle = 0x0002;         // SERVER_STATUS_AUTOCOMMIT
constexpr std::uint16_t kInTrans = 0x0003;      // + SERVER_STATUS_IN_TRANS
constexpr std::uint16_t kMoreResults = 0x0008;  // SERVER_MORE_RESULTS_EXISTS

Bytes my_packet(std::uint8_t seq, const Bytes& payload) {
  return cat({le(payload.size(), 3), {seq}, payload});
}

Bytes my_greeting(std::uint32_t caps = kServerCaps, std::uint32_t id = kMyConnId,
                  const std::string& version = "5.5.5-10.11.6-MariaDB-0+deb12u1") {
  Bytes payload = cat({{10},
                       str(version),
                       {0},
                       le(id, 4),
                       str("abcdefgh"),
                       {0},
                       le(caps & 0xFFFF, 2),
                       {45},
                       le(kIdle, 2),
                       le(caps >> 16, 2),
                       {21},
                       Bytes(10, 0),
                       str("ijklmnopqrst"),
                       {0},
                       str("mysql_native_password\0"s)});
  return my_packet(0, payload);
}

Bytes my_handshake_response(std::uint32_t caps = kClientCaps) {
  return my_packet(1, cat({le(caps, 4),
                           le(1u << 24, 4),
                           {45},
                           Bytes(23, 0),
                           str("test\0"s),
                           {0},
                           str("mysql_native_password\0"s)}));
}

// lenenc affected rows, lenenc insert id, status, warnings
Bytes my_ok(std::uint8_t seq, std::uint16_t status, std::uint8_t header = 0x00) {
  return my_packet(seq, cat({{header, 0, 0}, le(status, 2), le(0, 2)}));
}
Bytes my_eof(std::uint8_t seq, std::uint16_t status) {
  return my_packet(seq, cat({{0xFE}, le(0, 2), le(status, 2)}));
}
Bytes my_err(std::uint8_t seq) {
  return my_packet(seq, cat({{0xFF}, le(1146, 2), str("#42S02Table 'x' doesn't exist")}));
}
Bytes my_command(std::uint8_t cmd, const std::string& arg = "") {
  return my_packet(0, cat({{cmd}, str(arg)}));
}
Bytes my_query(const std::string& sql) {
  return my_command(0x03, sql);
}
Bytes my_column_def(std::uint8_t seq) {
  return my_packet(seq, cat({{3},
                             str("def"),
                             {0, 0, 0, 1},
                             str("a"),
                             {0, 0x0c, 0x21, 0},
                             le(64, 4),
                             {0xFD, 0, 0, 0, 0, 0}}));
}

// Login: greeting, handshake response, OK (idle).
Transcript my_login(std::uint32_t client_caps = kClientCaps) {
  return {received(my_greeting()), sent(my_handshake_response(client_caps)),
          received(my_ok(2, kIdle))};
}

Transcript with(Transcript t, std::initializer_list<Msg> more) {
  t.insert(t.end(), more.begin(), more.end());
  return t;
}

// A result set: column count, definitions, (EOF), rows, terminator. Returns
// the server's packets as one message.
Bytes my_result_set(bool deprecate_eof, std::uint16_t status, const std::vector<Bytes>& rows,
                    int columns = 2) {
  std::uint8_t seq = 1;
  Bytes out = my_packet(seq++, {static_cast<std::uint8_t>(columns)});
  for (int i = 0; i < columns; ++i) out = cat({out, my_column_def(seq++)});
  if (!deprecate_eof) out = cat({out, my_eof(seq++, status)});
  for (const Bytes& row : rows) out = cat({out, my_packet(seq++, row)});
  return cat({out, deprecate_eof ? my_ok(seq, status, 0xFE) : my_eof(seq, status)});
}

// Rows that look like OK packets saying "idle" (0x00 header: an empty first
// column in text rows, the header of every binary row).
const std::vector<Bytes> kTrapRows = {
    {0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00},  // '', '', '', "\x02", ...
    {0x00, 0x01, 0x31},                          // '', '1'
    {0x00, 0x00, 0x00, 0x00, 0x00},
};

// ================================================================================
// Classification

TEST(WireClassify, PostgresStartupMessage) {
  expect_replay(with(pg_session_start(), {sent(pg_query("SELECT 1")), received(pg_ready('I'))}),
                postgres("I", kPgPid));
}

TEST(WireClassify, PostgresSslRequestRefusedThenStartup) {
  Transcript t = {sent(pg_ssl_request()), received({'N'}), sent(pg_startup()),
                  received(pg_login_ok())};
  expect_replay(t, postgres("I", kPgPid));
}

TEST(WireClassify, PostgresSslRequestAcceptedGoesBlind) {
  Transcript t = {sent(pg_ssl_request()), received({'S'}), sent({0x16, 0x03, 0x01, 0x00, 0x10}),
                  received({0x16, 0x03, 0x03})};
  expect_replay(t, postgres("", -1, Blind::kEncrypted));
  Conversation conv;
  replay(t, Split::kWhole, 1, &conv);
  EXPECT_TRUE(conv.done());
  EXPECT_FALSE(conv.wants_sent());
  EXPECT_FALSE(conv.wants_received());
}

TEST(WireClassify, PostgresGssEncRefusedThenSslRefusedThenStartup) {
  Transcript t = {sent(pg_gss_request()), received({'N'}),    sent(pg_ssl_request()),
                  received({'N'}),        sent(pg_startup()), received(pg_login_ok())};
  expect_replay(t, postgres("I", kPgPid));
}

TEST(WireClassify, PostgresGssEncAcceptedGoesBlind) {
  Transcript t = {sent(pg_gss_request()), received({'G'}), sent({0, 0, 0, 60, 1, 2, 3})};
  expect_replay(t, postgres("", -1, Blind::kEncrypted));
}

TEST(WireClassify, PostgresSslRequestAnsweredByOldServersError) {
  Transcript t = {sent(pg_ssl_request()), received(pg_msg('E', str("SFATAL\0C08P01\0\0"s)))};
  expect_replay(t, postgres(""));
}

TEST(WireClassify, SslRequestAnsweredWithNonsenseIsNotADatabase) {
  expect_replay({sent(pg_ssl_request()), received({'G'})}, not_database());
}

TEST(WireClassify, SslRequestRefusedThenCancelRequestIsASideConnection) {
  // asyncpg (sslmode=prefer) opens its cancel connections like its sessions.
  Transcript t = {sent(pg_ssl_request()), received({'N'}),
                  sent(cat({be32(16), be32(80877102), be32(kPgPid), be32(0xDEADBEEF)}))};
  expect_replay(t, not_database(/*cancel=*/true));
  // Until the packet after the 'N', nothing is decided: no record is made.
  Conversation conv;
  Outcome o = replay({sent(pg_ssl_request()), received({'N'})}, Split::kWhole, 1, &conv);
  EXPECT_EQ(o.decided, 0);
  EXPECT_FALSE(conv.done());
}

TEST(WireClassify, PostgresCancelRequestIsASideConnection) {
  Transcript t = {sent(cat({be32(16), be32(80877102), be32(kPgPid), be32(0xDEADBEEF)}))};
  expect_replay(t, not_database(/*cancel=*/true));
}

// A TLS 1.3 ClientHello with an ALPN extension (PostgreSQL 17 direct SSL).
Bytes client_hello(const std::string& alpn) {
  Bytes alpn_list = cat({{static_cast<std::uint8_t>(alpn.size())}, str(alpn)});
  Bytes ext = cat({{0x00, 0x10},
                   le(0, 0),
                   {0, static_cast<std::uint8_t>(alpn_list.size() + 2)},
                   {0},
                   {static_cast<std::uint8_t>(alpn_list.size())},
                   alpn_list});
  Bytes hello = cat({{0x03, 0x03},
                     Bytes(32, 0x5A),
                     {0},
                     {0x00, 0x02, 0x13, 0x01},
                     {0x01, 0x00},
                     {0, static_cast<std::uint8_t>(ext.size())},
                     ext});
  Bytes handshake = cat({{0x01, 0, 0, static_cast<std::uint8_t>(hello.size())}, hello});
  return cat({{0x16, 0x03, 0x01, 0, static_cast<std::uint8_t>(handshake.size())}, handshake});
}

TEST(WireClassify, DirectSslWithPostgresAlpnIsPostgres) {
  // Every split: the ALPN name is found wherever the socket cut the ClientHello.
  expect_replay({sent(client_hello("postgresql")), received({0x16, 0x03, 0x03, 0, 5})},
                postgres("", -1, Blind::kEncrypted));
}

TEST(WireClassify, TlsWithoutPostgresAlpnIsNotADatabase) {
  expect_replay({sent(client_hello("h2"))}, not_database());
  expect_replay({sent(client_hello("http/1.1"))}, not_database());
}

// fuzz_wire's finding (tests/fuzz/corpus/wire/wire-whole-vs-split-direct-ssl):
// the ALPN scan looked only at the first call's bytes, so a ClientHello whose
// first piece ended before the name was "not a database" split and PostgreSQL
// whole. Now: nothing is decided until the name or the record's end is seen.
TEST(WireClassify, DirectSslSplitBeforeTheAlpnNameIsDecidedWhenTheNameArrives) {
  const Bytes hello = client_hello("postgresql");
  const std::size_t cut = hello.size() - 6;  // inside "postgresql"
  Conversation conv;
  Outcome o = replay({sent(Bytes(hello.begin(), hello.begin() + cut))}, Split::kWhole, 1, &conv);
  EXPECT_EQ(o.decided, 0);
  EXPECT_EQ(conv.protocol(), Protocol::kUndecided);
  EXPECT_FALSE(conv.done());
  const Feed f = conv.client_sent(hello.data() + cut, hello.size() - cut);
  EXPECT_TRUE(f.decided);
  EXPECT_TRUE(f.went_blind);
  EXPECT_EQ(conv.protocol(), Protocol::kPostgres);
  EXPECT_EQ(conv.blind(), Blind::kEncrypted);
}

TEST(WireClassify, TlsNameAfterTheFirstRecordDoesNotCount) {
  // The first record (a ClientHello for h2) ends; "postgresql" in the bytes
  // after it is not an ALPN entry of this hello: decided "not a database" at
  // the record's end, the same for every split.
  const Bytes hello = client_hello("h2");
  expect_replay({sent(cat({hello, str("\x0apostgresql")}))}, not_database());
  // A record header that is all there is: undecided until more comes.
  Conversation conv;
  EXPECT_FALSE(conv.client_sent(hello.data(), 3).decided);
  EXPECT_EQ(conv.protocol(), Protocol::kUndecided);
}

TEST(WireClassify, HttpGetIsNotADatabase) {
  expect_replay({sent(str("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")),
                 received(str("HTTP/1.1 200 OK\r\n"))},
                not_database());
}

TEST(WireClassify, ServerBannersAreNotADatabase) {
  expect_replay({received(str("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"))}, not_database());
  expect_replay({received(str("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))},
                not_database());
  expect_replay({received(str("220 mail.example.com ESMTP Postfix\r\n"))}, not_database());
  expect_replay({received(str("+OK Dovecot ready.\r\n"))}, not_database());
}

TEST(WireClassify, MysqlGreetingIsMysqlWithConnectionId) {
  expect_replay({received(my_greeting())}, mysql("", kMyConnId));
  expect_replay({received(my_greeting(kServerCaps, 0x01020304, "8.0.36-0ubuntu0.22.04.1"))},
                mysql("", 0x01020304));
}

TEST(WireClassify, MysqlErrorInsteadOfGreetingIsNotADatabase) {
  Bytes err = my_packet(
      0, cat({{0xFF},
              le(1129, 2),
              str("Host '10.0.0.7' is blocked because of many connection errors; unblock with "
                  "'mariadb-admin flush-hosts'")}));
  expect_replay({received(err)}, not_database());
}

TEST(WireClassify, MysqlGreetingWithBadVersionIsNotADatabase) {
  Bytes bad = my_greeting();
  bad[8] = 0x07;  // a control character inside the version string
  expect_replay({received(bad)}, not_database());
  Bytes wrong_seq = my_greeting();
  wrong_seq[3] = 1;
  expect_replay({received(wrong_seq)}, not_database());
}

TEST(WireClassify, MysqlGreetingWithVeryLongVersionIsDecidedWhenTheBufferIsFull) {
  Outcome o =
      replay({received(my_greeting(kServerCaps, kMyConnId, std::string(200, 'v')))}, Split::kBytes);
  EXPECT_EQ(o, mysql("", -1));
}

TEST(WireClassify, BytesFromTheOtherSideBeforeADecisionMeanNeither) {
  // Half a StartupMessage, then the peer talks: no PostgreSQL server does that.
  expect_replay({sent({0, 0, 0}), received(str("hello"))}, not_database());
  // Half a MySQL greeting, then the client talks.
  expect_replay({received({0x4a, 0, 0, 0, 10, '5'}), sent({1, 2, 3})}, not_database());
}

TEST(WireClassify, EmptyCallsChangeNothing) {
  Conversation conv;
  std::uint8_t byte = 0;
  EXPECT_FALSE(conv.client_sent(&byte, 0).decided);
  EXPECT_FALSE(conv.client_received(nullptr, 0).decided);
  EXPECT_EQ(conv.protocol(), Protocol::kUndecided);
  EXPECT_TRUE(conv.wants_sent());
  EXPECT_TRUE(conv.wants_received());
}

TEST(WireClassify, NamesOfProtocolsAndBlindness) {
  EXPECT_STREQ(protocol_name(Protocol::kPostgres), "postgresql");
  EXPECT_STREQ(protocol_name(Protocol::kMysql), "mysql");
  EXPECT_STREQ(protocol_name(Protocol::kNotDatabase), "");
  EXPECT_STREQ(blind_reason(Blind::kEncrypted), "encrypted");
  EXPECT_STREQ(blind_reason(Blind::kCompressed), "compressed");
  EXPECT_STREQ(blind_reason(Blind::kLost), "unparsed");
  EXPECT_STREQ(blind_reason(Blind::kNone), "");
}

// ================================================================================
// PostgreSQL sessions

TEST(WirePostgres, ReadyForQueryFollowsIdleTransactionErrorIdle) {
  Transcript t = with(
      pg_session_start(),
      {sent(pg_query("BEGIN")), received(cat({pg_command_complete("BEGIN"), pg_ready('T')})),
       sent(pg_query("SELECT 1/0")),
       received(cat({pg_msg('E', str("SERROR\0C22012\0Mdivision by zero\0\0"s)), pg_ready('E')})),
       sent(pg_query("ROLLBACK")),
       received(cat({pg_command_complete("ROLLBACK"), pg_ready('I')}))});
  expect_replay(t, postgres("ITEI", kPgPid));
}

TEST(WirePostgres, HugeDataRowBodiesAreSkipped) {
  // 1 MB DataRow whose body is full of fake ReadyForQuery('I') messages.
  Bytes fake = pg_ready('I');
  Bytes body;
  while (body.size() < (1u << 20)) body.insert(body.end(), fake.begin(), fake.end());
  Transcript t =
      with(pg_session_start(),
           {sent(pg_query("BEGIN")), received(pg_ready('T')), sent(pg_query("SELECT big")),
            received(cat({pg_msg('T', Bytes(30, 1)), pg_msg('D', body), pg_msg('D', body),
                          pg_command_complete("SELECT 2"), pg_ready('T')}))});
  expect_replay(t, postgres("IT", kPgPid));
}

TEST(WirePostgres, ImpossibleLengthsGoBlind) {
  expect_replay(with(pg_session_start(), {received(cat({{'D'}, be32(3)}))}),
                postgres("I", kPgPid, Blind::kLost));
  expect_replay(with(pg_session_start(), {received(cat({{'D'}, be32((1u << 30) + 1)}))}),
                postgres("I", kPgPid, Blind::kLost));
  expect_replay(with(pg_session_start(), {received(cat({{'Z'}, be32(6), {'I', 'I'}}))}),
                postgres("I", kPgPid, Blind::kLost));
  expect_replay(with(pg_session_start(), {received(pg_ready('X'))}),
                postgres("I", kPgPid, Blind::kLost));
}

TEST(WirePostgres, ClientMessagesAfterStartupTellWhereBeginWasSent) {
  Conversation conv;
  replay({sent(pg_ssl_request())}, Split::kWhole, 1, &conv);
  Bytes n = {'N'};
  conv.client_received(n.data(), n.size());
  Bytes startup = pg_startup();
  conv.client_sent(startup.data(), startup.size());
  EXPECT_TRUE(conv.wants_sent());
  Bytes login = pg_login_ok();
  conv.client_received(login.data(), login.size());
  // Simple query, then a Parse (statement name before the SQL), while idle.
  Bytes select = pg_query("SELECT 1");
  EXPECT_FALSE(conv.client_sent(select.data(), select.size()).may_begin);
  Bytes parse =
      pg_msg('P', str("__asyncpg_stmt_1__\0  /* app */ begin isolation level serializable\0\0\0"s));
  EXPECT_TRUE(conv.client_sent(parse.data(), parse.size()).may_begin);
  Bytes in_txn = pg_ready('T');
  conv.client_received(in_txn.data(), in_txn.size());
  // Inside a transaction another BEGIN starts nothing.
  Bytes begin = pg_query("BEGIN");
  EXPECT_FALSE(conv.client_sent(begin.data(), begin.size()).may_begin);
  // A client message with an impossible length: nothing can be followed after it.
  Bytes noise = str("\x51\xff\xff\xff\xff garbage");
  EXPECT_TRUE(conv.client_sent(noise.data(), noise.size()).went_blind);
  EXPECT_EQ(conv.blind(), Blind::kLost);
}

TEST(WireBegin, StartsTransactionReadsTheFirstWordsOnly) {
  auto begins = [](const std::string& sql) {
    return starts_transaction(reinterpret_cast<const std::uint8_t*>(sql.data()), sql.size());
  };
  EXPECT_TRUE(begins("BEGIN"));
  EXPECT_TRUE(begins("begin;"));
  EXPECT_TRUE(begins("  \n\tBEGIN ISOLATION LEVEL READ COMMITTED"));
  EXPECT_TRUE(begins("START TRANSACTION READ ONLY"));
  EXPECT_TRUE(begins("start\n  transaction"));
  EXPECT_TRUE(begins("/* orm */ BEGIN"));
  EXPECT_FALSE(begins("BEGINNING"));
  EXPECT_FALSE(begins("SELECT 1; BEGIN"));
  EXPECT_FALSE(begins("START SLAVE"));
  EXPECT_FALSE(begins("/* never closed BEGIN"));
  EXPECT_FALSE(begins(""));
  EXPECT_FALSE(begins("BEG"));
}

TEST(WirePostgres, BackendKeyDataWithLongerKey) {
  // Protocol 3.2 (PostgreSQL 18) keys may be up to 256 bytes long.
  Transcript t = {sent(cat({be32(8 + 16), be32(196610), str("user\0postgres\0\0\0"s)})),
                  received(cat({pg_msg('R', be32(0)), pg_msg('K', cat({be32(99), Bytes(32, 7)})),
                                pg_ready('I')}))};
  expect_replay(t, postgres("I", 99));
}

// ================================================================================
// openGauss / GaussDB: PostgreSQL's framing, protocol 3.51 (3.50 from older
// Gauss clients) and authentication requests of their own. Built from
// openGauss's published source (src/include/libpq/pqcomm.h;
// src/common/backend/libpq/auth.cpp, sendAuthRequest;
// src/common/interfaces/libpq/fe-connect.cpp and fe-auth.cpp): no openGauss
// server can be installed here to record a real conversation.

constexpr std::uint32_t kGaussProcNo = 140;  // openGauss's BackendKeyData carries its PGPROC number

Bytes og_startup(std::uint32_t minor) {
  // The parameters openGauss's libpq sends (build_startup_packet).
  Bytes params =
      str("user\0gaussdb\0database\0postgres\0application_name\0gsql\0"
          "client_encoding\0UTF8\0connect_timeout\0"
          "10\0\0"s);
  return cat(
      {be32(static_cast<std::uint32_t>(8 + params.size())), be32((3u << 16) | minor), params});
}

// AUTH_REQ_SHA256 (10) or AUTH_REQ_SM3 (13) for a password stored that way:
// the stored method (SHA256_PASSWORD 2, SM3_PASSWORD 3), the salt as 64 hex
// digits, the token as 8, then the server signature (64 hex digits) for a
// client below 3.50 or the PBKDF2 iteration count for one above it.
Bytes og_rfc5802_request(std::uint32_t areq, std::uint32_t method, std::uint32_t minor) {
  Bytes body = cat({be32(areq), be32(method),
                    str("6d1f0a3b9c8e7d6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"),
                    str("0a1b2c3d")});
  if (minor < 50) body = cat({body, str(std::string(64, 'e'))});
  if (minor > 50) body = cat({body, be32(10000)});
  return pg_msg('R', body);
}
// The client's answer: a PasswordMessage holding H (hmac(StoredKey, token)
// XOR ClientKey) as 64 hex digits and a NUL.
Bytes og_password_message() {
  return pg_msg('p', str(std::string(64, 'f') + '\0'));
}
// AuthenticationOk, ParameterStatus, BackendKeyData, the coordinator's 'k'
// (an 8-byte thread id, unknown to PostgreSQL), ReadyForQuery(I).
Bytes og_login_ok() {
  return cat({pg_msg('R', be32(0)),
              pg_msg('S', str("server_version\0"
                              "9.2.4\0"s)),
              pg_msg('K', cat({be32(kGaussProcNo), be32(0x5eed)})),
              pg_msg('k', cat({be32(0), be32(139811)})), pg_ready('I')});
}

Transcript og_session(std::uint32_t minor, Bytes auth_request) {
  return {sent(og_startup(minor)),
          received(std::move(auth_request)),
          sent(og_password_message()),
          received(og_login_ok()),
          sent(pg_query("BEGIN")),
          received(cat({pg_command_complete("BEGIN"), pg_ready('T')})),
          sent(pg_query("SELECT 1")),
          received(cat({pg_msg('T', cat({{0, 1}, str("?column?\0"s), Bytes(18, 0)})),
                        pg_msg('D', cat({{0, 1}, be32(1), str("1")})),
                        pg_command_complete("SELECT 1"), pg_ready('T')})),
          sent(pg_query("COMMIT")),
          received(cat({pg_command_complete("COMMIT"), pg_ready('I')})),
          sent(pg_msg('X', {}))};
}

Outcome og_outcome() {
  Outcome want = postgres("ITI", kGaussProcNo);
  want.may_begin = 1;
  return want;
}

TEST(WireOpenGauss, Protocol351Sha256SessionIsFollowedLikePostgres) {
  expect_replay(og_session(51, og_rfc5802_request(10, 2, 51)), og_outcome());
}

TEST(WireOpenGauss, Protocol350WithServerSignatureAndSm3) {
  // Older Gauss clients (3.50) get neither the signature nor the iteration count.
  expect_replay(og_session(50, og_rfc5802_request(10, 2, 50)), og_outcome());
  expect_replay(og_session(51, og_rfc5802_request(13, 3, 51)), og_outcome());
}

TEST(WireOpenGauss, Md5Sha256AndPlainMd5Requests) {
  // AUTH_REQ_MD5_SHA256 (11): the sha256 salt (64 hex digits) then the md5 salt.
  expect_replay(og_session(51, pg_msg('R', cat({be32(11), str(std::string(64, '3')), be32(7)}))),
                og_outcome());
  expect_replay(og_session(51, pg_msg('R', cat({be32(5), be32(0x01020304)}))), og_outcome());
}

TEST(WireOpenGauss, TerminateIsTheProgramsClose) {
  Conversation conv;
  Transcript t = og_session(51, og_rfc5802_request(10, 2, 51));
  const Bytes terminate = t.back().bytes;
  t.pop_back();
  replay(t, Split::kWhole, 1, &conv);
  const Feed f = conv.client_sent(terminate.data(), terminate.size());
  EXPECT_TRUE(f.closing);
  EXPECT_FALSE(f.went_blind);
}

TEST(WireOpenGauss, LoginRefusedIsStillADatabaseWithNoState) {
  Transcript t = {sent(og_startup(51)), received(og_rfc5802_request(10, 2, 51)),
                  sent(og_password_message()),
                  received(pg_msg('E', str("SFATAL\0C28P01\0MInvalid username/password,login "
                                           "denied.\0\0"s)))};
  expect_replay(t, postgres(""));
}

TEST(WireOpenGauss, StopRequestIsASideConnection) {
  // StopRequest: length 20, PG_PROTOCOL(1234, 5681), backend pid, query id.
  expect_replay({sent(cat({be32(20), be32(80877105), be32(kGaussProcNo), be32(0), be32(77)}))},
                not_database(/*cancel=*/true));
  // After an SSLRequest refused, as a client with sslmode=prefer sends it.
  expect_replay({sent(pg_ssl_request()), received({'N'}),
                 sent(cat({be32(20), be32(80877105), be32(kGaussProcNo), be32(0), be32(77)}))},
                not_database(/*cancel=*/true));
}

TEST(WireOpenGauss, OnlyTheGaussMinorsAreAccepted) {
  // 3.0 and 3.2 (PostgreSQL), 3.50 and 3.51 (Gauss): the versions a server
  // of either family accepts. Not the minors around them.
  for (std::uint32_t minor : {3u, 49u, 52u, 100u}) {
    SCOPED_TRACE(minor);
    expect_replay({sent(og_startup(minor))}, not_database());
  }
  for (std::uint32_t minor : {0u, 2u, 50u, 51u}) {
    SCOPED_TRACE(minor);
    expect_replay({sent(og_startup(minor)), received(og_login_ok())}, postgres("I", kGaussProcNo));
  }
}

// ================================================================================
// MySQL sessions

TEST(WireMysql, LoginOkReportsTheStatus) {
  expect_replay(my_login(), mysql("I", kMyConnId));
  Conversation conv;
  replay(my_login(), Split::kWhole, 1, &conv);
  EXPECT_TRUE(conv.wants_sent());
  EXPECT_TRUE(conv.wants_received());
}

TEST(WireMysql, AuthSwitchAndMoreDataThenOk) {
  Transcript t = {
      received(my_greeting()),
      sent(my_handshake_response()),
      received(my_packet(2, cat({{0xFE}, str("caching_sha2_password\0"s), Bytes(20, 9)}))),
      sent(my_packet(3, Bytes(32, 0xAB))),
      received(my_packet(4, {0x01, 0x03})),  // fast auth success
      received(my_ok(5, kInTrans))};
  expect_replay(t, mysql("T", kMyConnId));
}

TEST(WireMysql, LoginErrorReportsNothing) {
  Transcript t = {received(my_greeting()), sent(my_handshake_response()), received(my_err(2))};
  expect_replay(t, mysql("", kMyConnId));
}

TEST(WireMysql, BeginAndCommit) {
  Transcript t = with(my_login(), {sent(my_query("BEGIN")), received(my_ok(1, kInTrans)),
                                   sent(my_query("COMMIT")), received(my_ok(1, kIdle))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

void expect_rows_are_not_ok_packets(bool deprecate_eof) {
  const std::uint32_t caps = kClientCaps | (deprecate_eof ? kDeprecateEof : 0);
  Transcript t =
      with(my_login(caps),
           {sent(my_query("BEGIN")), received(my_ok(1, kInTrans)), sent(my_query("SELECT ...")),
            received(my_result_set(deprecate_eof, kInTrans, kTrapRows))});
  expect_replay(t, mysql("IT", kMyConnId));
  // The same rows, idle terminator: the state follows the terminator only.
  Transcript t2 = with(my_login(caps), {sent(my_query("SELECT ...")),
                                        received(my_result_set(deprecate_eof, kInTrans, kTrapRows)),
                                        sent(my_query("COMMIT")), received(my_ok(1, kIdle))});
  expect_replay(t2, mysql("ITI", kMyConnId));
}

TEST(WireMysql, RowsStartingWithZeroAreNotOkPacketsDeprecateEof) {
  expect_rows_are_not_ok_packets(true);
}
TEST(WireMysql, RowsStartingWithZeroAreNotOkPacketsClassicEof) {
  expect_rows_are_not_ok_packets(false);
}

TEST(WireMysql, DeprecateEofNeedsTheServerToo) {
  // The client asks for DEPRECATE_EOF but the server does not offer it: EOF packets stay.
  Transcript t = {received(my_greeting(kServerCaps & ~kDeprecateEof)),
                  sent(my_handshake_response(kClientCaps | kDeprecateEof)),
                  received(my_ok(2, kIdle)), sent(my_query("SELECT")),
                  received(my_result_set(false, kInTrans, kTrapRows))};
  expect_replay(t, mysql("IT", kMyConnId));
}

TEST(WireMysql, MultipleResults) {
  // SELECT 1; BEGIN; SELECT 2 -- each result in its own read.
  Transcript t =
      with(my_login(), {sent(my_query("SELECT 1; BEGIN; SELECT 2")),
                        received(my_result_set(false, kIdle | kMoreResults, {{1, '1'}}, 1)),
                        received(my_ok(6, kInTrans | kMoreResults)),
                        received(my_result_set(false, kInTrans, {{0x00}}, 1)),
                        sent(my_query("ROLLBACK")), received(my_ok(1, kIdle))});
  expect_replay(t, mysql("ITI", kMyConnId));
  // All in one read: the last state of the call wins, the next command is still followed.
  Transcript one = with(my_login(kClientCaps | kDeprecateEof),
                        {sent(my_query("SELECT 1; BEGIN; SELECT 2")),
                         received(cat({my_result_set(true, kIdle | kMoreResults, {{1, '1'}}, 1),
                                       my_ok(6, kInTrans | kMoreResults),
                                       my_result_set(true, kInTrans, {{0x00}}, 1)})),
                         sent(my_query("ROLLBACK")), received(my_ok(1, kIdle))});
  EXPECT_EQ(replay(one, Split::kWhole).states, "ITI");
  EXPECT_EQ(replay(one, Split::kBytes).states, "ITI");
}

TEST(WireMysql, ErrorKeepsTheState) {
  Transcript t = with(
      my_login(), {sent(my_query("BEGIN")), received(my_ok(1, kInTrans)),
                   sent(my_query("SELECT * FROM x")), received(my_err(1)),
                   sent(my_query("SELECT 1")), received(my_result_set(false, kInTrans, {{1, '1'}})),
                   sent(my_query("ROLLBACK")), received(my_ok(1, kIdle))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

// COM_STMT_PREPARE_OK starts with 0x00; read as an OK packet, bytes 3-4 of
// the statement id would be "status idle".
void expect_prepare_is_not_ok(bool deprecate_eof) {
  const std::uint32_t caps = kClientCaps | (deprecate_eof ? kDeprecateEof : 0);
  Bytes prepare_ok = my_packet(1, cat({{0x00}, le(1, 4), le(2, 2), le(1, 2), {0}, le(0, 2)}));
  Bytes defs = cat({my_column_def(2)});
  std::uint8_t seq = 3;
  if (!deprecate_eof) defs = cat({defs, my_eof(seq++, kInTrans)});
  defs = cat({defs, my_column_def(seq), my_column_def(static_cast<std::uint8_t>(seq + 1))});
  seq = static_cast<std::uint8_t>(seq + 2);
  if (!deprecate_eof) defs = cat({defs, my_eof(seq, kInTrans)});
  Bytes execute = my_command(0x17, "\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\xfd\x00\x00"s);
  Transcript t = with(my_login(caps),
                      {sent(my_query("BEGIN")), received(my_ok(1, kInTrans)),
                       sent(my_command(0x16, "SELECT ?, 2")), received(cat({prepare_ok, defs})),
                       sent(execute), received(my_result_set(deprecate_eof, kInTrans, kTrapRows)),
                       sent(my_command(0x19, "\x01\x00\x00\x00"s)), sent(my_query("COMMIT")),
                       received(my_ok(1, kIdle))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

TEST(WireMysql, PrepareResponseIsNotAnOkPacketDeprecateEof) {
  expect_prepare_is_not_ok(true);
}
TEST(WireMysql, PrepareResponseIsNotAnOkPacketClassicEof) {
  expect_prepare_is_not_ok(false);
}

TEST(WireMysql, UnknownCommandsAreIgnoredUntilTheNextCommand) {
  // COM_BINLOG_DUMP (0x12): a stream of events with 0x00 headers.
  Transcript t =
      with(my_login(),
           {sent(my_query("BEGIN")), received(my_ok(1, kInTrans)), sent(my_command(0x12, "binlog")),
            received(cat({my_ok(1, kIdle), my_packet(2, {0x00, 0x01}), my_eof(3, kIdle)})),
            sent(my_query("COMMIT")), received(my_ok(1, kIdle))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

TEST(WireMysql, SimpleCommands) {
  Transcript t = with(my_login(),
                      {sent(my_command(0x0e)), received(my_ok(1, kIdle)),           // ping
                       sent(my_command(0x02, "db")), received(my_ok(1, kInTrans)),  // init db
                       sent(my_command(0x1b, "\x01\x00"s)),
                       received(my_eof(1, kInTrans)),                      // set option answers EOF
                       sent(my_command(0x1f)), received(my_ok(1, kIdle)),  // reset connection
                       sent(my_command(0x09)), received(my_packet(1, str("Uptime: 5  Threads: 1"))),
                       sent(my_command(0x18, "long data")),  // no response
                       sent(my_command(0x0e)), received(my_err(1))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

TEST(WireMysql, SslRequestGoesBlind) {
  Bytes ssl_request =
      my_packet(1, cat({le(kClientCaps | kSsl, 4), le(1u << 24, 4), {45}, Bytes(23, 0)}));
  Transcript t = {received(my_greeting()), sent(ssl_request),
                  sent({0x16, 0x03, 0x01, 0x02, 0x00, 0x01}),
                  received({0x16, 0x03, 0x03, 0x00, 0x7a})};
  expect_replay(t, mysql("", kMyConnId, Blind::kEncrypted));
}

TEST(WireMysql, CompressionGoesBlind) {
  Transcript t = {received(my_greeting()), sent(my_handshake_response(kClientCaps | kCompress)),
                  received({0x07, 0, 0, 2, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0})};
  expect_replay(t, mysql("", kMyConnId, Blind::kCompressed));
  // The server does not offer compression: the flag has no effect.
  Transcript plain = {received(my_greeting(kServerCaps & ~kCompress)),
                      sent(my_handshake_response(kClientCaps | kCompress)),
                      received(my_ok(2, kIdle))};
  expect_replay(plain, mysql("I", kMyConnId));
}

TEST(WireMysql, LocalInfile) {
  // The file's packets have sequence ids 2, 3, ...; one starts like COM_QUERY.
  Transcript t = with(
      my_login(), {sent(my_query("BEGIN")), received(my_ok(1, kInTrans)),
                   sent(my_query("LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE t")),
                   received(my_packet(1, cat({{0xFB}, str("/tmp/x")}))),
                   sent(my_packet(2, str("\x03SELECT 1 looks like a query\n"))),
                   sent(my_packet(3, {0x0e})), sent(my_packet(4, {})), received(my_ok(5, kInTrans)),
                   sent(my_query("COMMIT")), received(my_ok(1, kIdle))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

TEST(WireMysql, PipelinedCommands) {
  Transcript t = with(
      my_login(), {sent(cat({my_query("BEGIN"), my_query("SELECT 1"), my_command(0x0e),
                             my_query("COMMIT"), my_query("SELECT 2")})),
                   received(cat({my_ok(1, kInTrans), my_result_set(false, kInTrans, kTrapRows)})),
                   received(cat({my_ok(1, kInTrans), my_ok(1, kIdle)})),
                   received(my_result_set(false, kIdle, kTrapRows))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

TEST(WireMysql, ChangeUserIsAnotherLogin) {
  Transcript t = with(
      my_login(),
      {sent(my_query("BEGIN")), received(my_ok(1, kInTrans)), sent(my_command(0x11, "other\0\0"s)),
       received(my_packet(1, cat({{0xFE}, str("mysql_native_password\0"s), Bytes(20, 1)}))),
       sent(my_packet(2, Bytes(20, 2))), received(my_ok(3, kIdle))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

TEST(WireMysql, ProgressReportsAndUnsolicitedErrorsEndNothing) {
  Bytes progress = my_packet(1, cat({{0xFF, 0xFF, 0xFF, 1, 1, 1}, le(5000, 3), str("stage")}));
  Transcript t = with(my_login(), {received(my_err(0)),  // unsolicited
                                   sent(my_query("BEGIN")), received(my_ok(1, kInTrans)),
                                   sent(my_query("ALTER TABLE t ...")), received(progress),
                                   received(progress), received(my_ok(2, kIdle))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

TEST(WireMysql, CursorThenFetch) {
  // COM_STMT_EXECUTE with a cursor: definitions, EOF with CURSOR_EXISTS, no rows.
  constexpr std::uint16_t kCursor = 0x0040;
  Bytes execute = my_command(0x17, "\x01\x00\x00\x00\x01\x01\x00\x00\x00"s);
  Bytes head = cat({my_packet(1, {1}), my_column_def(2), my_eof(3, kInTrans | kCursor)});
  Bytes fetched = cat({my_packet(1, {0x00, 0x00, 0x01, 'a'}), my_packet(2, {0x00, 0x00, 0x00}),
                       my_eof(3, kInTrans | 0x80)});
  Transcript t =
      with(my_login(), {sent(my_query("BEGIN")), received(my_ok(1, kInTrans)), sent(execute),
                        received(head), sent(my_command(0x1c, "\x01\x00\x00\x00\x02\x00\x00\x00"s)),
                        received(fetched), sent(my_query("COMMIT")), received(my_ok(1, kIdle))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

TEST(WireMysql, MetadataLeftOut) {
  // MariaDB metadata caching: column count, "metadata follows" = 0, rows.
  Transcript t = with(my_login(kClientCaps | kDeprecateEof),
                      {sent(my_query("BEGIN")), received(my_ok(1, kInTrans)),
                       sent(my_command(0x17, "\x01\x00\x00\x00\x00\x01\x00\x00\x00"s)),
                       received(cat({my_packet(1, {2, 0}), my_packet(2, {0x00, 0x00, 0x00}),
                                     my_ok(3, kInTrans, 0xFE)})),
                       sent(my_query("COMMIT")), received(my_ok(1, kIdle))});
  expect_replay(t, mysql("ITI", kMyConnId));
}

TEST(WireMysql, SixteenMegabyteRowsAreContinued) {
  // A text row whose first column needs an 8-byte length (0xFE): the first
  // packet is 0xFFFFFF long, the continuation starts with 0xFE too.
  Bytes big(0xFFFFFF, 'x');
  big[0] = 0xFE;
  Bytes tail = {0xFE, 0x00, 0x00, 0x00, 0x00};  // looks like an EOF saying "idle"
  Bytes response = cat({my_packet(1, {1}), my_column_def(2), my_eof(3, kInTrans), my_packet(4, big),
                        my_packet(5, tail), my_eof(6, kInTrans)});
  Transcript t =
      with(my_login(), {sent(my_query("BEGIN")), received(my_ok(1, kInTrans)),
                        sent(my_query("SELECT")), received(response), sent(my_query("SELECT 1")),
                        received(my_result_set(false, kInTrans, {{1, '1'}}))});
  EXPECT_EQ(replay(t, Split::kWhole), mysql("IT", kMyConnId));
  EXPECT_EQ(replay(t, Split::kRandom, 3), mysql("IT", kMyConnId));
}

TEST(WireMysql, ContradictionsGoBlind) {
  // A result set header of 0xFE, a column count of 0, an OK too short for its status.
  for (const Bytes& bad : {my_packet(1, {0xFE, 0, 0, 2, 0, 0, 0, 0, 0, 0}),
                           my_packet(1, {0x00, 0x00}), my_packet(1, {0xFC, 0x00, 0x00})}) {
    Transcript t = with(my_login(), {sent(my_query("SELECT")), received(bad)});
    expect_replay(t, mysql("I", kMyConnId, Blind::kLost));
  }
}

// ================================================================================
// Real transcripts (recorded by tests/unit/wire_data/record.py)

struct Recording {
  Transcript transcript;
  std::int64_t server_id = -1;
};

Recording load(const std::string& name) {
  Recording r;
  std::ifstream in(std::string(CONNLEAK_SOURCE_DIR) + "/tests/unit/wire_data/" + name);
  EXPECT_TRUE(in.good()) << name;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# server_id ", 0) == 0) r.server_id = std::stoll(line.substr(12));
    if (line.size() < 3 || (line[0] != 'C' && line[0] != 'S')) continue;
    Bytes bytes;
    for (std::size_t i = 2; i + 1 < line.size(); i += 2)
      bytes.push_back(std::stoi(line.substr(i, 2), nullptr, 16));
    r.transcript.push_back(Msg{line[0] == 'C', std::move(bytes)});
  }
  EXPECT_FALSE(r.transcript.empty()) << name;
  EXPECT_GE(r.server_id, 0) << name;
  return r;
}

TEST(WireRealTranscript, Postgres15Asyncpg) {
  // SSLRequest, 'N', startup; BEGIN, SELECT (extended protocol), COMMIT,
  // BEGIN, SELECT 1/0, ROLLBACK.
  Recording r = load("pg15_asyncpg.txt");
  Outcome want = postgres("ITITEI", r.server_id);
  want.may_begin = 2;  // each BEGIN, sent while idle: where the transaction's stacks are taken
  expect_replay(r.transcript, want);
}

TEST(WireRealTranscript, Mariadb1011Pymysql) {
  // login I; BEGIN T; SELECT T; COMMIT I; BEGIN T; ERR; ROLLBACK I; CREATE I;
  // BEGIN T; LOAD DATA LOCAL INFILE T; COMMIT I; SELECT 1 I, BEGIN T, SELECT 2 T; ROLLBACK I.
  Recording r = load("mariadb1011_pymysql.txt");
  Outcome want = mysql("ITITITITI", r.server_id);
  want.may_begin =
      3;  // the three BEGINs (autocommit is on; "SELECT 1; BEGIN; ..." starts with SELECT)
  expect_replay(r.transcript, want);
}

TEST(WireRealTranscript, Mariadb1011DeprecateEof) {
  // login I; BEGIN T; SELECT T; PREPARE; EXECUTE (binary row 00 00 00 02 00 00 00:
  // "OK, idle" if misread) T; CLOSE; COMMIT I; PING I; SELECT 1 I, BEGIN T, SELECT 2 T; ROLLBACK I.
  Recording r = load("mariadb1011_raw_deprecate_eof.txt");
  expect_replay(r.transcript, mysql("ITITI", r.server_id));
}

TEST(WireRealTranscript, Mariadb1011ClassicEof) {
  Recording r = load("mariadb1011_raw_classic_eof.txt");
  expect_replay(r.transcript, mysql("ITITI", r.server_id));
}

// ================================================================================
// Garbage: never a read out of bounds (ASan), always a consistent state.

void expect_consistent(const Conversation& conv, Protocol decided) {
  EXPECT_EQ(conv.protocol(), decided);
  EXPECT_EQ(conv.done(), conv.blind() != Blind::kNone || decided == Protocol::kNotDatabase);
  if (conv.done()) {
    EXPECT_FALSE(conv.wants_sent());
    EXPECT_FALSE(conv.wants_received());
  } else {
    EXPECT_TRUE(conv.wants_received());
  }
}

// Feeds `rounds` random chunks (random direction, random bytes, sometimes a
// plausible header) and checks that nothing is reported once blind.
void feed_garbage(Conversation& conv, std::mt19937& rng, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    Bytes chunk(1 + rng() % (rng() % 4 == 0 ? 3000 : 12));
    for (auto& b : chunk)
      b = static_cast<std::uint8_t>(rng() % 4 == 0 ? "\x00\x01\x03\x05\xfe\xff\xfb"[rng() % 7]
                                                   : rng());
    const bool was_done = conv.done();
    const bool is_sent = rng() % 2;
    const Feed f = is_sent ? conv.client_sent(chunk.data(), chunk.size())
                           : conv.client_received(chunk.data(), chunk.size());
    EXPECT_FALSE(f.decided);
    if (was_done) {
      EXPECT_FALSE(f.has_txn || f.went_blind || f.server_id >= 0);
    }
    if (f.went_blind) {
      EXPECT_TRUE(conv.done());
    }
  }
}

TEST(WireFuzz, GarbageAfterClassification) {
  const std::vector<std::pair<Transcript, Protocol>> starts = {
      {pg_session_start(), Protocol::kPostgres},
      {{sent(pg_ssl_request()), received({'N'}), sent(pg_startup())}, Protocol::kPostgres},
      {my_login(), Protocol::kMysql},
      {my_login(kClientCaps | kDeprecateEof), Protocol::kMysql},
      {{received(my_greeting())}, Protocol::kMysql},
  };
  for (std::uint32_t seed = 1; seed <= 300; ++seed) {
    for (const auto& [start, protocol] : starts) {
      SCOPED_TRACE("seed " + std::to_string(seed));
      Conversation conv;
      replay(start, Split::kWhole, seed, &conv);
      std::mt19937 rng(seed);
      feed_garbage(conv, rng, 40);
      expect_consistent(conv, protocol);
    }
  }
}

TEST(WireFuzz, GarbageFromTheStart) {
  for (std::uint32_t seed = 1; seed <= 2000; ++seed) {
    std::mt19937 rng(seed);
    Conversation conv;
    Bytes first(1 + rng() % 20);
    for (auto& b : first) b = static_cast<std::uint8_t>(rng());
    if (seed % 3 == 0) first[0] = 0;  // get past the first-byte check more often
    rng() % 2 ? conv.client_sent(first.data(), first.size())
              : conv.client_received(first.data(), first.size());
    for (int i = 0; i < 20; ++i) {
      Bytes chunk(1 + rng() % 40);
      for (auto& b : chunk) b = static_cast<std::uint8_t>(rng());
      rng() % 2 ? conv.client_sent(chunk.data(), chunk.size())
                : conv.client_received(chunk.data(), chunk.size());
    }
    if (conv.protocol() != Protocol::kUndecided) expect_consistent(conv, conv.protocol());
  }
}

TEST(WireFuzz, MutatedRealTranscripts) {
  const char* names[] = {"pg15_asyncpg.txt", "mariadb1011_pymysql.txt",
                         "mariadb1011_raw_deprecate_eof.txt", "mariadb1011_raw_classic_eof.txt"};
  for (const char* name : names) {
    const Recording r = load(name);
    for (std::uint32_t seed = 1; seed <= 200; ++seed) {
      SCOPED_TRACE(std::string(name) + " seed " + std::to_string(seed));
      std::mt19937 rng(seed);
      Transcript t = r.transcript;
      for (int flips = 1 + rng() % 4; flips > 0; --flips) {
        Msg& m = t[rng() % t.size()];
        m.bytes[rng() % m.bytes.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
      }
      Conversation conv;
      const Outcome o = replay(t, Split::kRandom, seed, &conv);
      EXPECT_LE(o.decided, 1);
      EXPECT_LE(o.went_blind, 1);
      if (o.protocol != Protocol::kUndecided) expect_consistent(conv, o.protocol);
    }
  }
}

}  // namespace
}  // namespace connleak::wire

namespace connleak::wire {
namespace {

// Pool checkouts (server_refused snapshots): an ErrorResponse with SQLSTATE
// 53300 at startup says the server ran out of slots; another SQLSTATE does not.
bool refused_after(const std::string& sqlstate, bool byte_by_byte) {
  Conversation conv;
  conv.client_sent(pg_startup().data(), pg_startup().size());
  Bytes err = pg_msg('E', cat({str("SFATAL"),
                               {0},
                               str("VFATAL"),
                               {0},
                               str("C" + sqlstate),
                               {0},
                               str("Msorry, too many clients already"),
                               {0},
                               {0}}));
  bool refused = false;
  if (byte_by_byte) {
    for (std::uint8_t b : err) refused |= conv.client_received(&b, 1).refused;
  } else {
    refused = conv.client_received(err.data(), err.size()).refused;
  }
  return refused;
}

TEST(WirePostgres, TooManyClientsErrorAtStartupIsARefusal) {
  EXPECT_TRUE(refused_after("53300", false));
  EXPECT_TRUE(refused_after("53300", true));
  EXPECT_FALSE(refused_after("28P01", false));  // bad password: not a refusal for slots
}

// MySQL: a full server sends ERR 1040 instead of its greeting (PyMySQL and
// aiomysql see only their own exception); an account's limit is ERR 1226
// (MariaDB) or 1203 (MySQL) after the handshake response. Other errors in the
// same places are not refusals for slots.
Bytes my_refusal(std::uint8_t seq, std::uint16_t code, const std::string& text) {
  return my_packet(seq, cat({{0xFF}, le(code, 2), str(text)}));
}

Feed my_first_packet(const Bytes& packet, bool byte_by_byte, Conversation& conv) {
  Feed all;
  if (!byte_by_byte) return conv.client_received(packet.data(), packet.size());
  for (std::uint8_t b : packet) {
    Feed f = conv.client_received(&b, 1);
    all.refused |= f.refused;
    if (f.refused_code) all.refused_code = f.refused_code;
  }
  return all;
}

TEST(WireMysql, TooManyConnectionsInsteadOfTheGreetingIsARefusal) {
  for (bool byte_by_byte : {false, true}) {
    Conversation conv;
    Feed f = my_first_packet(my_refusal(0, 1040, "Too many connections"), byte_by_byte, conv);
    EXPECT_TRUE(f.refused) << byte_by_byte;
    EXPECT_EQ(f.refused_code, 1040) << byte_by_byte;
    EXPECT_EQ(conv.protocol(), Protocol::kMysql) << byte_by_byte;
  }
  // "Host is not allowed to connect" (1130) is no refusal for slots, nor a database session.
  Conversation host_blocked;
  Feed f = my_first_packet(my_refusal(0, 1130, "Host '10.0.0.9' is not allowed to connect"), false,
                           host_blocked);
  EXPECT_FALSE(f.refused);
  EXPECT_EQ(host_blocked.protocol(), Protocol::kNotDatabase);
}

TEST(WireMysql, AccountConnectionLimitAtLoginIsARefusal) {
  for (std::uint16_t code : {1226, 1203}) {
    Conversation conv;
    Bytes greeting = my_greeting(), response = my_handshake_response();
    conv.client_received(greeting.data(), greeting.size());
    conv.client_sent(response.data(), response.size());
    Bytes err = my_refusal(2, code, "User 'app' has exceeded the 'max_user_connections' resource");
    Feed f = conv.client_received(err.data(), err.size());
    EXPECT_TRUE(f.refused) << code;
    EXPECT_EQ(f.refused_code, code);
  }
  // A bad password (1045) at the same place is not.
  Conversation conv;
  Bytes greeting = my_greeting(), response = my_handshake_response();
  conv.client_received(greeting.data(), greeting.size());
  conv.client_sent(response.data(), response.size());
  Bytes err = my_refusal(2, 1045, "#28000Access denied for user 'app'");
  EXPECT_FALSE(conv.client_received(err.data(), err.size()).refused);
}

}  // namespace
}  // namespace connleak::wire
