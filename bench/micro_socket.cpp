// Socket-level hooks (shim/hooks_socket.cpp): what send()/recv() cost with
// the shim loaded, on sockets it does not watch and on database sockets whose
// bytes it parses. Linked into bench_micro (micro.cpp has the main).
//
// One iteration = ONE client send() + ONE client recv(), so the shim's cost
// per call is the added time per iteration / 2.
//
// Two variants of each scenario:
//   BM_sock_*       real I/O. The "server" is played in the same thread on the
//                   accept()ed end of a 127.0.0.1 TCP connection, with raw
//                   system calls (syscall(SYS_sendto/SYS_recvfrom)) that never
//                   reach the hooks: plain and shim runs make the same server
//                   calls, so the difference is the client's two hooked calls.
//                   (A program's own accept()ed ends are never watched: they
//                   would cost what BM_sock_unwatched does.) An iteration is
//                   ~9 us of kernel TCP whose spread between runs is far
//                   larger than the hooks' cost.
//   BM_sock_stub_*  the same connection and handshake, then the client's
//                   send()/recv() are answered by bench/stub/sock_stub.c
//                   without a system call (send returns its length, recv the
//                   server's canned reply): the shim sees the same bytes and
//                   runs the same code, and the hooks' cost is all that is timed.
//
// Setup (listen, connect, accept, handshake) is outside the timed loop, and
// every benchmark closes its sockets, so the shim's run exits with no leak.
//
// Both runs are multi-threaded (an idle helper thread, started before the
// first socket benchmark): glibc's send()/recv() take a longer, cancellable
// path once a process has a second thread, and the shim starts its collector
// thread at the first database connection (in the shim's run the BM_pq_*
// benchmarks have already done so). Without the helper the shim's figures
// would include that glibc difference (about 49 instructions and ~25 ns per
// call, see bench/findings.md) on top of the hooks.
// CONNLEAK_BENCH_SINGLE_THREAD=1 leaves the helper out, to measure it.
//
// BM_sock_badfd_single_thread exists only with CONNLEAK_BENCH_SINGLE_THREAD=1
// (run it alone): a single-threaded host with one database connection open
// (a PostgreSQL conversation as in BM_sock_pg, kept open) calls send() and
// recv() on a descriptor that is not open (EBADF: the kernel's part is short
// and steady). With the shim, that connection started its collector thread,
// so glibc's wrappers take their multi-threaded path; plain, the process
// stays single-threaded. Added = the hooks plus that glibc difference.
//
// CONNLEAK_BENCH_ITERATIONS=N runs every socket benchmark for exactly N
// iterations (one run, no estimation): scripts/bench_run.py counts
// instructions per iteration under callgrind from two such runs.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "alloc_count.h"

extern "C" void sock_stub_fake(int fd, const void* reply,
                               std::size_t reply_len);  // stub/sock_stub.c

namespace {

using Bytes = std::string;

void set_allocs(benchmark::State& state, unsigned long before) {
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(bench_alloc_count() - before),
                                                benchmark::Counter::kAvgIterations);
}

bool single_thread_mode() {
  const char* single = std::getenv("CONNLEAK_BENCH_SINGLE_THREAD");
  return single && *single == '1';
}

// An idle second thread for the whole process (see the top of the file).
void ensure_threaded() {
  static const bool started = [] {
    if (single_thread_mode()) return false;
    // Blocked for good; nothing to destroy at exit (a static condition
    // variable's destructor would wait for this thread forever).
    std::thread([] {
      for (;;) pause();
    }).detach();
    return true;
  }();
  (void)started;
}

// --- byte helpers ----------------------------------------------------------------

void put_be32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>((v >> s) & 0xFF));
}
void put_le(Bytes& b, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// PostgreSQL message: type byte, Int32 length (itself included), body.
Bytes pg_msg(char type, const Bytes& body) {
  Bytes m(1, type);
  put_be32(m, static_cast<std::uint32_t>(body.size() + 4));
  return m + body;
}

// MySQL packet: 3-byte length, sequence id, payload.
Bytes my_packet(std::uint8_t seq, const Bytes& payload) {
  Bytes p;
  put_le(p, payload.size(), 3);
  p.push_back(static_cast<char>(seq));
  return p + payload;
}

// --- the server end: raw system calls, never through the shim's hooks ---------------

bool server_send(int fd, const Bytes& b) {
  std::size_t done = 0;
  while (done < b.size()) {
    long r = syscall(SYS_sendto, fd, b.data() + done, b.size() - done, 0, nullptr, 0);
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

bool server_recv(int fd, std::size_t n) {
  char buf[512];
  std::size_t done = 0;
  while (done < n) {
    std::size_t want = n - done < sizeof buf ? n - done : sizeof buf;
    long r = syscall(SYS_recvfrom, fd, buf, want, 0, nullptr, nullptr);
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

// --- the client end: libc's send()/recv(), the hooked calls ------------------------

// One send() call (64-byte and protocol messages fit a loopback socket's buffer).
inline bool client_send(int fd, const Bytes& b) {
  return send(fd, b.data(), b.size(), 0) == static_cast<ssize_t>(b.size());
}

// recv() until n bytes; on loopback one call gets all of them in practice.
inline bool client_recv(int fd, char* buf, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = recv(fd, buf + done, n - done, 0);
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

// A connected 127.0.0.1 TCP pair: `client` made with connect() (a candidate
// for the shim), `server` accept()ed (never watched). Nagle off on both ends.
struct TcpPair {
  int client = -1;
  int server = -1;

  bool open() {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    bool ok = bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
              listen(listener, 1) == 0 &&
              getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    if (ok) {
      client = socket(AF_INET, SOCK_STREAM, 0);
      ok = client >= 0 && connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    if (ok) {
      server = accept(listener, nullptr, nullptr);
      ok = server >= 0;
    }
    close(listener);
    int one = 1;
    if (ok)
      ok = setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 &&
           setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0;
    return ok;
  }
  ~TcpPair() {
    if (client >= 0) close(client);
    if (server >= 0) close(server);
  }
};

// --- scenarios ------------------------------------------------------------------------
// Each opens its connection, says what one iteration sends and gets back, and
// what the client says before closing.

struct Scenario {
  TcpPair tcp;
  int pair[2] = {-1, -1};  // socketpair (unwatched): client = pair[0], "server" = pair[1]
  int client = -1;
  int server = -1;
  Bytes request;  // the client's send of one iteration
  Bytes reply;    // what the server answers (the client's recv)
  Bytes goodbye;  // sent before closing (PostgreSQL Terminate, MySQL COM_QUIT)
  const char* error = nullptr;

  ~Scenario() {
    if (pair[0] >= 0) close(pair[0]);
    if (pair[1] >= 0) close(pair[1]);
  }
};

// A socketpair never connect()ed: the hooks' fast path (one byte load from
// the watch table after the real call). The client sends on one end and
// receives on the other, so both calls are the client's and go through the
// hooks; the "server" does nothing.
void open_unwatched(Scenario& s) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, s.pair) != 0) {
    s.error = "socketpair";
    return;
  }
  s.client = s.pair[0];
  s.request = Bytes(64, 'x');
  s.reply = Bytes(64, 'x');
}

// A connect()ed TCP socket whose first bytes are HTTP: classified "not a
// database" on that first send, after which it is not watched any more.
void open_nondb(Scenario& s) {
  if (!s.tcp.open()) {
    s.error = "loopback TCP connection";
    return;
  }
  s.client = s.tcp.client;
  s.server = s.tcp.server;
  const Bytes http = "GET / HTTP/1.1\r\n\r\n";
  if (!client_send(s.client, http) || !server_recv(s.server, http.size())) s.error = "HTTP request";
  s.request = Bytes(64, 'x');
  s.reply = Bytes(64, 'r');
}

// The benchmark plays a PostgreSQL server: StartupMessage, then
// AuthenticationOk + BackendKeyData + ReadyForQuery(I); the shim records one
// socket-level connection. An iteration: Query("SELECT 1") out (the shim reads
// its first bytes: does it begin a transaction?), CommandComplete +
// ReadyForQuery(I) back (the server's transaction state, which stays idle).
void open_pg(Scenario& s) {
  if (!s.tcp.open()) {
    s.error = "loopback TCP connection";
    return;
  }
  s.client = s.tcp.client;
  s.server = s.tcp.server;
  const Bytes params("user\0bench\0\0", 12);
  Bytes startup;
  put_be32(startup, static_cast<std::uint32_t>(8 + params.size()));
  put_be32(startup, 196608);  // protocol 3.0
  startup += params;
  Bytes key;
  put_be32(key, 4242);       // backend pid
  put_be32(key, 0x5EC2E7u);  // secret key
  const Bytes login = pg_msg('R', Bytes(4, '\0')) + pg_msg('K', key) + pg_msg('Z', "I");
  char in[64];
  if (!client_send(s.client, startup) || !server_recv(s.server, startup.size()) ||
      !server_send(s.server, login) || !client_recv(s.client, in, login.size()))
    s.error = "PostgreSQL start-up";
  s.request = pg_msg('Q', Bytes("SELECT 1\0", 9));
  s.reply = pg_msg('C', Bytes("SELECT 1\0", 9)) + pg_msg('Z', "I");
  s.goodbye = pg_msg('X', "");
}

// The benchmark plays a MariaDB server: greeting (protocol 10), handshake
// response (PROTOCOL_41 | DEPRECATE_EOF, no SSL), OK (autocommit). An
// iteration: COM_QUERY "SELECT 1" out, one OK packet (status 0x0002: idle)
// back. Both directions are parsed: the command says what response to expect.
void open_mysql(Scenario& s) {
  if (!s.tcp.open()) {
    s.error = "loopback TCP connection";
    return;
  }
  s.client = s.tcp.client;
  s.server = s.tcp.server;
  constexpr std::uint32_t kLongPassword = 0x1, kFoundRows = 0x2, kLongFlag = 0x4,
                          kConnectWithDb = 0x8, kProtocol41 = 0x200, kTransactions = 0x2000,
                          kSecureConnection = 0x8000, kMultiStatements = 1u << 16,
                          kMultiResults = 1u << 17, kPsMultiResults = 1u << 18,
                          kPluginAuth = 1u << 19, kConnectAttrs = 1u << 20,
                          kPluginAuthLenenc = 1u << 21, kSessionTrack = 1u << 23,
                          kDeprecateEof = 1u << 24;
  constexpr std::uint32_t kServerCaps =
      kLongPassword | kFoundRows | kLongFlag | kConnectWithDb | kProtocol41 | kTransactions |
      kSecureConnection | kMultiStatements | kMultiResults | kPsMultiResults | kPluginAuth |
      kConnectAttrs | kPluginAuthLenenc | kSessionTrack | kDeprecateEof;
  constexpr std::uint32_t kClientCaps = kLongPassword | kProtocol41 | kTransactions |
                                        kSecureConnection | kMultiResults | kPluginAuth |
                                        kDeprecateEof;
  constexpr std::uint16_t kAutocommit = 0x0002;
  Bytes greeting(1, '\x0a');
  greeting += Bytes("5.5.5-10.11.6-MariaDB\0", 22);
  put_le(greeting, 4242, 4);  // connection id
  greeting += "abcdefgh";     // auth data, part 1
  greeting.push_back('\0');
  put_le(greeting, kServerCaps & 0xFFFF, 2);
  greeting.push_back(45);  // utf8mb4_general_ci
  put_le(greeting, kAutocommit, 2);
  put_le(greeting, kServerCaps >> 16, 2);
  greeting.push_back(21);  // auth data length
  greeting += Bytes(10, '\0');
  greeting += Bytes("ijklmnopqrst\0", 13);
  greeting += Bytes("mysql_native_password\0", 22);
  greeting = my_packet(0, greeting);
  Bytes response;
  put_le(response, kClientCaps, 4);
  put_le(response, 1u << 24, 4);  // max packet
  response.push_back(45);
  response += Bytes(23, '\0');
  response += Bytes("bench\0", 6);
  response.push_back('\0');  // empty auth response
  response += Bytes("mysql_native_password\0", 22);
  response = my_packet(1, response);
  Bytes ok_body("\0\0\0", 3);  // header, affected rows, last insert id
  put_le(ok_body, kAutocommit, 2);
  put_le(ok_body, 0, 2);  // warnings
  const Bytes login_ok = my_packet(2, ok_body);
  char in[256];
  if (!server_send(s.server, greeting) || !client_recv(s.client, in, greeting.size()) ||
      !client_send(s.client, response) || !server_recv(s.server, response.size()) ||
      !server_send(s.server, login_ok) || !client_recv(s.client, in, login_ok.size()))
    s.error = "MySQL handshake";
  s.request = my_packet(0, "\x03SELECT 1");
  s.reply = my_packet(1, ok_body);
  s.goodbye = my_packet(0, "\x01");  // COM_QUIT
}

// --- benchmarks -----------------------------------------------------------------------

using Opener = void (*)(Scenario&);

// Real I/O: client send, server recv + send (raw system calls), client recv.
void run_real(benchmark::State& state, Opener open) {
  ensure_threaded();
  Scenario s;
  open(s);
  if (s.error) return state.SkipWithError(s.error);
  char in[256];
  const bool pair = s.pair[0] >= 0;
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    bool ok = client_send(s.client, s.request);
    if (pair)  // the socketpair's other end is the client's too (see open_unwatched)
      ok = ok && client_recv(s.pair[1], in, s.reply.size());
    else
      ok = ok && server_recv(s.server, s.request.size()) && server_send(s.server, s.reply) &&
           client_recv(s.client, in, s.reply.size());
    if (!ok) {
      state.SkipWithError("send/recv");
      break;
    }
    benchmark::DoNotOptimize(in);
  }
  set_allocs(state, before);
  if (!s.goodbye.empty()) client_send(s.client, s.goodbye);
}

// Stubbed I/O: the same two hooked calls on the client's descriptor, answered
// by sock_stub.c without a system call.
void run_stub(benchmark::State& state, Opener open) {
  ensure_threaded();
  Scenario s;
  open(s);
  if (s.error) return state.SkipWithError(s.error);
  char in[256];
  sock_stub_fake(s.client, s.reply.data(), s.reply.size());
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    if (!client_send(s.client, s.request) || !client_recv(s.client, in, s.reply.size())) {
      state.SkipWithError("send/recv");
      break;
    }
    benchmark::DoNotOptimize(in);
  }
  set_allocs(state, before);
  sock_stub_fake(-1, nullptr, 0);
  if (!s.goodbye.empty()) client_send(s.client, s.goodbye);
}

void BM_sock_unwatched(benchmark::State& state) {
  run_real(state, open_unwatched);
}
void BM_sock_nondb(benchmark::State& state) {
  run_real(state, open_nondb);
}
void BM_sock_pg(benchmark::State& state) {
  run_real(state, open_pg);
}
void BM_sock_mysql(benchmark::State& state) {
  run_real(state, open_mysql);
}
void BM_sock_stub_unwatched(benchmark::State& state) {
  run_stub(state, open_unwatched);
}
void BM_sock_stub_nondb(benchmark::State& state) {
  run_stub(state, open_nondb);
}
void BM_sock_stub_pg(benchmark::State& state) {
  run_stub(state, open_pg);
}
void BM_sock_stub_mysql(benchmark::State& state) {
  run_stub(state, open_mysql);
}

void BM_sock_badfd_single_thread(benchmark::State& state) {
  Scenario db;  // stays open: the shim has a database connection (and its thread)
  open_pg(db);
  if (db.error) return state.SkipWithError(db.error);
  char buf[64] = {};
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    benchmark::DoNotOptimize(send(-1, buf, sizeof buf, 0));
    benchmark::DoNotOptimize(recv(-1, buf, sizeof buf, 0));
  }
  set_allocs(state, before);
  client_send(db.client, db.goodbye);
}

// CONNLEAK_BENCH_ITERATIONS=N: exactly N iterations, one run (for callgrind).
void fixed_iterations(benchmark::internal::Benchmark* b) {
  if (const char* n = std::getenv("CONNLEAK_BENCH_ITERATIONS"))
    b->Iterations(std::strtoll(n, nullptr, 10));
}

BENCHMARK(BM_sock_unwatched)->Apply(fixed_iterations);
BENCHMARK(BM_sock_nondb)->Apply(fixed_iterations);
BENCHMARK(BM_sock_pg)->Apply(fixed_iterations);
BENCHMARK(BM_sock_mysql)->Apply(fixed_iterations);
BENCHMARK(BM_sock_stub_unwatched)->Apply(fixed_iterations);
BENCHMARK(BM_sock_stub_nondb)->Apply(fixed_iterations);
BENCHMARK(BM_sock_stub_pg)->Apply(fixed_iterations);
BENCHMARK(BM_sock_stub_mysql)->Apply(fixed_iterations);

const bool g_single_thread_registered = [] {
  if (!single_thread_mode()) return false;
  benchmark::RegisterBenchmark("BM_sock_badfd_single_thread", BM_sock_badfd_single_thread)
      ->Apply(fixed_iterations);
  return true;
}();

}  // namespace
