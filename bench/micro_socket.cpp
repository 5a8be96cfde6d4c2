// Socket-level hooks (shim/hooks_socket.cpp): what send()/recv() cost with
// the shim loaded, on sockets it does not watch and on database sockets whose
// server bytes it parses. Linked into bench_micro (micro.cpp has the main).
//
// One iteration = ONE client send() + ONE client recv(), so the shim's cost
// per call is the added time per iteration / 2. The "server" is played in the
// same thread on the accept()ed end of a 127.0.0.1 TCP connection, and its
// calls are raw system calls (syscall(SYS_sendto/SYS_recvfrom)) that never
// reach the shim's hooks: plain and shim runs make the same server calls, so
// the difference is the client's two hooked calls alone. (A program's own
// server ends would go through the hooks too, at the BM_sock_unwatched cost:
// accept()ed descriptors are never watched.)
//
// Setup (listen, connect, accept, handshake) is outside the timed loop, and
// every benchmark closes its sockets, so the shim's run exits with no leak.
//
// Both runs are multi-threaded (an idle helper thread, started before the
// first socket benchmark): glibc's send()/recv() take a longer, cancellable
// path once a process has a second thread, and the shim starts its collector
// thread at the first database connection (in the shim's run the BM_pq_*
// benchmarks have already done so). Without the helper the shim's figures
// would include that glibc difference (about 47 instructions per call, see
// bench/findings.md) on top of the hooks. CONNLEAK_BENCH_SINGLE_THREAD=1
// leaves the helper out, to measure that difference.
//
// CONNLEAK_BENCH_ITERATIONS=N runs every BM_sock_* for exactly N iterations
// (one run, no estimation): scripts/bench_run.py counts instructions per
// iteration under callgrind from two such runs.
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

namespace {

using Bytes = std::string;

void set_allocs(benchmark::State& state, unsigned long before) {
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(bench_alloc_count() - before),
                                                benchmark::Counter::kAvgIterations);
}

// An idle second thread for the whole process (see the top of the file).
void ensure_threaded() {
  static const bool started = [] {
    const char* single = std::getenv("CONNLEAK_BENCH_SINGLE_THREAD");
    if (single && *single == '1') return false;
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

bool server_recv(int fd, char* buf, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    long r = syscall(SYS_recvfrom, fd, buf + done, n - done, 0, nullptr, nullptr);
    if (r <= 0) return false;
    done += static_cast<std::size_t>(r);
  }
  return true;
}

// --- the client end: libc's send()/recv(), the hooked calls ------------------------

// One send() call (64-byte and protocol messages fit a loopback socket's buffer).
inline bool client_send(int fd, const void* buf, std::size_t n) {
  return send(fd, buf, n, 0) == static_cast<ssize_t>(n);
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
    bool ok = bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && listen(listener, 1) == 0 &&
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

// --- benchmarks ---------------------------------------------------------------------

// A socketpair never connect()ed: the hooks' fast path (one byte load from
// the watch table after the real call). Both calls go through the hooks.
void BM_sock_unwatched(benchmark::State& state) {
  ensure_threaded();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return state.SkipWithError("socketpair");
  char out[64], in[64];
  std::memset(out, 'x', sizeof out);
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    if (!client_send(sv[0], out, sizeof out) || !client_recv(sv[1], in, sizeof in)) {
      state.SkipWithError("send/recv");
      break;
    }
    benchmark::DoNotOptimize(in);
  }
  set_allocs(state, before);
  close(sv[0]);
  close(sv[1]);
}

// A connect()ed TCP socket whose first bytes are HTTP: classified "not a
// database" on that first send, after which it is not watched any more.
void BM_sock_nondb(benchmark::State& state) {
  ensure_threaded();
  TcpPair tcp;
  if (!tcp.open()) return state.SkipWithError("loopback TCP connection");
  static const char kRequest[] = "GET / HTTP/1.1\r\n\r\n";
  char request[sizeof kRequest - 1];
  if (!client_send(tcp.client, kRequest, sizeof kRequest - 1) || !server_recv(tcp.server, request, sizeof request))
    return state.SkipWithError("HTTP request");
  const Bytes reply(64, 'r');
  char out[64], in[64], at_server[64];
  std::memset(out, 'x', sizeof out);
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    if (!client_send(tcp.client, out, sizeof out) || !server_recv(tcp.server, at_server, sizeof at_server) ||
        !server_send(tcp.server, reply) || !client_recv(tcp.client, in, sizeof in)) {
      state.SkipWithError("send/recv");
      break;
    }
    benchmark::DoNotOptimize(in);
  }
  set_allocs(state, before);
}

// The benchmark plays a PostgreSQL server: StartupMessage, then
// AuthenticationOk + BackendKeyData + ReadyForQuery(I); the shim records one
// socket-level connection. Loop: Query("SELECT 1") out (the shim reads its
// first bytes: does it begin a transaction?), CommandComplete +
// ReadyForQuery(I) back (the server's transaction state, which stays idle).
void BM_sock_pg(benchmark::State& state) {
  ensure_threaded();
  TcpPair tcp;
  if (!tcp.open()) return state.SkipWithError("loopback TCP connection");
  const Bytes params("user\0bench\0\0", 12);
  Bytes startup;
  put_be32(startup, static_cast<std::uint32_t>(8 + params.size()));
  put_be32(startup, 196608);  // protocol 3.0
  startup += params;
  Bytes key;
  put_be32(key, 4242);        // backend pid
  put_be32(key, 0x5EC2E7u);   // secret key
  const Bytes login = pg_msg('R', Bytes(4, '\0')) + pg_msg('K', key) + pg_msg('Z', "I");
  Bytes scratch(256, '\0');
  if (!client_send(tcp.client, startup.data(), startup.size()) ||
      !server_recv(tcp.server, scratch.data(), startup.size()) || !server_send(tcp.server, login) ||
      !client_recv(tcp.client, scratch.data(), login.size()))
    return state.SkipWithError("PostgreSQL start-up");

  const Bytes query = pg_msg('Q', Bytes("SELECT 1\0", 9));
  const Bytes answer = pg_msg('C', Bytes("SELECT 1\0", 9)) + pg_msg('Z', "I");
  char at_server[64], in[64];
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    if (!client_send(tcp.client, query.data(), query.size()) ||
        !server_recv(tcp.server, at_server, query.size()) || !server_send(tcp.server, answer) ||
        !client_recv(tcp.client, in, answer.size())) {
      state.SkipWithError("query");
      break;
    }
    benchmark::DoNotOptimize(in);
  }
  set_allocs(state, before);
  // Terminate, as a client would, then close (the record is released).
  const Bytes terminate = pg_msg('X', "");
  client_send(tcp.client, terminate.data(), terminate.size());
}

// The benchmark plays a MariaDB server: greeting (protocol 10), handshake
// response (PROTOCOL_41 | DEPRECATE_EOF, no SSL), OK (autocommit). Loop:
// COM_QUERY "SELECT 1" out, one OK packet (status 0x0002, idle) back. Both
// directions are parsed: the command says what kind of response to expect.
void BM_sock_mysql(benchmark::State& state) {
  ensure_threaded();
  TcpPair tcp;
  if (!tcp.open()) return state.SkipWithError("loopback TCP connection");
  constexpr std::uint32_t kLongPassword = 0x1, kFoundRows = 0x2, kLongFlag = 0x4, kConnectWithDb = 0x8,
                          kProtocol41 = 0x200, kTransactions = 0x2000, kSecureConnection = 0x8000,
                          kMultiStatements = 1u << 16, kMultiResults = 1u << 17, kPsMultiResults = 1u << 18,
                          kPluginAuth = 1u << 19, kConnectAttrs = 1u << 20, kPluginAuthLenenc = 1u << 21,
                          kSessionTrack = 1u << 23, kDeprecateEof = 1u << 24;
  constexpr std::uint32_t kServerCaps = kLongPassword | kFoundRows | kLongFlag | kConnectWithDb | kProtocol41 |
                                        kTransactions | kSecureConnection | kMultiStatements | kMultiResults |
                                        kPsMultiResults | kPluginAuth | kConnectAttrs | kPluginAuthLenenc |
                                        kSessionTrack | kDeprecateEof;
  constexpr std::uint32_t kClientCaps = kLongPassword | kProtocol41 | kTransactions | kSecureConnection |
                                        kMultiResults | kPluginAuth | kDeprecateEof;
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
  Bytes scratch(256, '\0');
  if (!server_send(tcp.server, greeting) || !client_recv(tcp.client, scratch.data(), greeting.size()) ||
      !client_send(tcp.client, response.data(), response.size()) ||
      !server_recv(tcp.server, scratch.data(), response.size()) || !server_send(tcp.server, login_ok) ||
      !client_recv(tcp.client, scratch.data(), login_ok.size()))
    return state.SkipWithError("MySQL handshake");

  const Bytes query = my_packet(0, "\x03SELECT 1");
  const Bytes answer = my_packet(1, ok_body);
  char at_server[64], in[64];
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    if (!client_send(tcp.client, query.data(), query.size()) ||
        !server_recv(tcp.server, at_server, query.size()) || !server_send(tcp.server, answer) ||
        !client_recv(tcp.client, in, answer.size())) {
      state.SkipWithError("query");
      break;
    }
    benchmark::DoNotOptimize(in);
  }
  set_allocs(state, before);
  const Bytes quit = my_packet(0, "\x01");  // COM_QUIT
  client_send(tcp.client, quit.data(), quit.size());
}

// CONNLEAK_BENCH_ITERATIONS=N: exactly N iterations, one run (for callgrind).
void fixed_iterations(benchmark::internal::Benchmark* b) {
  if (const char* n = std::getenv("CONNLEAK_BENCH_ITERATIONS")) b->Iterations(std::strtoll(n, nullptr, 10));
}

BENCHMARK(BM_sock_unwatched)->Apply(fixed_iterations);
BENCHMARK(BM_sock_nondb)->Apply(fixed_iterations);
BENCHMARK(BM_sock_pg)->Apply(fixed_iterations);
BENCHMARK(BM_sock_mysql)->Apply(fixed_iterations);

}  // namespace
