#!/usr/bin/env python3
"""Records real client/server conversations for wire_protocol_test.cpp.

A TCP relay sits between a driver and a throwaway server and writes every
read it forwards, in order, to a transcript:

    # comment lines (the first ones say what was recorded)
    # server_id N        (the pid / connection id, as the driver reports it)
    C <hex>              bytes the client sent (one relay read)
    S <hex>              bytes the client received (one relay read)

Usage (servers from scripts/pg-server.sh and scripts/mariadb-server.sh):

    bash scripts/pg-server.sh start /tmp/wire-pg
    bash scripts/mariadb-server.sh start /tmp/wire-my
    python3 tests/unit/wire_data/record.py /tmp/wire-pg/env /tmp/wire-my/env
    bash scripts/pg-server.sh stop /tmp/wire-pg; bash scripts/mariadb-server.sh stop /tmp/wire-my

No password is recorded: PostgreSQL uses the trust superuser, MySQL the
password-less root over TCP (its auth response is empty).
"""
import asyncio
import os
import selectors
import socket
import struct
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            env[key] = value.strip("'")
    return env


class Relay:
    """Accepts one connection and forwards it to `upstream`, logging reads."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.chunks = []  # (direction, bytes)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        client, _ = self.listener.accept()
        server = socket.create_connection(self.upstream)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, ("C", server))
        sel.register(server, selectors.EVENT_READ, ("S", client))
        open_ends = 2
        while open_ends:
            for key, _ in sel.select():
                direction, other = key.data
                data = key.fileobj.recv(65536)
                if not data:
                    sel.unregister(key.fileobj)
                    open_ends -= 1
                    try:
                        other.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                self.chunks.append((direction, data))
                other.sendall(data)
        client.close()
        server.close()
        self.listener.close()

    def save(self, name, description, server_id):
        self.thread.join(timeout=10)
        with open(os.path.join(HERE, name), "w") as f:
            f.write(f"# {description}\n")
            f.write("# C: bytes the client sent, S: bytes it received; one relay read per line (record.py)\n")
            f.write(f"# server_id {server_id}\n")
            for direction, data in self.chunks:
                f.write(f"{direction} {data.hex()}\n")


# --- PostgreSQL (asyncpg) ------------------------------------------------------

async def asyncpg_session(port, pg):
    import asyncpg

    # ssl="prefer" (the default): SSLRequest, the server answers 'N'.
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres")
    pid = conn.get_server_pid()
    await conn.execute("BEGIN")                                        # T
    await conn.fetch("SELECT g, repeat('x', g) FROM generate_series(1, 5) g")
    await conn.execute("COMMIT")                                       # I
    await conn.execute("BEGIN")                                        # T
    try:
        await conn.execute("SELECT 1/0")                               # E
    except asyncpg.DivisionByZeroError:
        pass
    await conn.execute("ROLLBACK")                                     # I
    await conn.close()
    return pid


def record_postgres(pg):
    relay = Relay((pg["CONNLEAK_TEST_PG_HOST"], int(pg["CONNLEAK_TEST_PG_PORT"])))
    pid = asyncio.run(asyncpg_session(relay.port, pg))
    relay.save("pg15_asyncpg.txt",
               "asyncpg 0.27 / PostgreSQL 15: connect (SSLRequest, N), BEGIN, SELECT 5 rows, COMMIT, "
               "BEGIN, SELECT 1/0 (error), ROLLBACK, close", pid)


# --- MySQL (pymysql) -----------------------------------------------------------

def pymysql_session(port, my, infile):
    import pymysql
    from pymysql.constants import CLIENT

    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", database=my["CONNLEAK_TEST_MYSQL_DB"],
                           autocommit=True, local_infile=True, client_flag=CLIENT.MULTI_STATEMENTS)
    thread_id = conn.thread_id()
    cur = conn.cursor()
    cur.execute("BEGIN")                                               # in transaction
    cur.execute("SELECT '' AS a, 1 AS b UNION ALL SELECT 'x', 2 UNION ALL SELECT '', 3")
    cur.fetchall()
    cur.execute("COMMIT")                                              # idle
    cur.execute("BEGIN")                                               # in transaction
    try:
        cur.execute("SELECT * FROM no_such_table")                     # ERR (state unchanged)
    except pymysql.err.ProgrammingError:
        pass
    cur.execute("ROLLBACK")                                            # idle
    cur.execute("CREATE TEMPORARY TABLE t (a TEXT)")
    cur.execute("BEGIN")                                               # in transaction
    cur.execute(f"LOAD DATA LOCAL INFILE '{infile}' INTO TABLE t")     # 0xFB, upload, OK
    cur.execute("COMMIT")                                              # idle
    cur.execute("SELECT 1 AS one; BEGIN; SELECT 2 AS two")             # multi: idle, T, T
    while cur.nextset():
        pass
    cur.execute("ROLLBACK")                                            # idle
    conn.close()
    return thread_id


def record_pymysql(my):
    relay = Relay((my["CONNLEAK_TEST_MYSQL_HOST"], int(my["CONNLEAK_TEST_MYSQL_PORT"])))
    with tempfile.NamedTemporaryFile("w", suffix=".csv") as f:
        f.write("first\nsecond\n")
        f.flush()
        thread_id = pymysql_session(relay.port, my, f.name)
    relay.save("mariadb1011_pymysql.txt",
               "pymysql 1.0.2 / MariaDB 10.11 (classic EOF): connect, BEGIN, SELECT rows with '' first, COMMIT, "
               "BEGIN, SELECT from a missing table (ERR), ROLLBACK, LOAD DATA LOCAL INFILE in a transaction, "
               "multi-statement SELECT 1; BEGIN; SELECT 2, ROLLBACK, quit", thread_id)


# --- MySQL (a minimal client: DEPRECATE_EOF and prepared statements) ------------

def packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def read_idle(sock, idle=0.3):
    """Reads until the server has been quiet for `idle` seconds."""
    sock.settimeout(idle)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data
        if not chunk:
            return data
        data += chunk


def payloads(data):
    out = []
    while len(data) >= 4:
        n = int.from_bytes(data[:3], "little")
        out.append(data[4:4 + n])
        data = data[4 + n:]
    return out


def raw_session(port, my, deprecate_eof):
    sock = socket.create_connection(("127.0.0.1", port))
    greeting = payloads(read_idle(sock))[0]
    thread_id = int.from_bytes(greeting[greeting.index(0, 1) + 1:][:4], "little")
    caps = (0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | (1 << 16) | (1 << 17) | (1 << 18) | (1 << 19)
            | ((1 << 24) if deprecate_eof else 0))
    login = (struct.pack("<IIB23s", caps, 1 << 24, 33, b"") + b"root\0" + b"\0"
             + my["CONNLEAK_TEST_MYSQL_DB"].encode() + b"\0" + b"mysql_native_password\0")
    sock.sendall(packet(1, login))
    reply = payloads(read_idle(sock))
    if reply and reply[0][:1] == b"\xfe":  # auth switch: answer with the (empty) password
        sock.sendall(packet(3, b""))
        reply = payloads(read_idle(sock))
    assert reply and reply[0][:1] == b"\x00", reply

    def command(payload):
        sock.sendall(packet(0, payload))
        return payloads(read_idle(sock))

    command(b"\x03BEGIN")                                              # T
    command(b"\x03SELECT '' AS a, 1 AS b UNION ALL SELECT 'x', 2")
    prepared = command(b"\x16SELECT ? AS a, 2 AS b")                   # PREPARE_OK: 0x00 header, not an OK
    stmt = prepared[0][1:5]
    # COM_STMT_EXECUTE: stmt, no cursor, 1 iteration, NULL bitmap, types bound, VAR_STRING, ''
    command(b"\x17" + stmt + b"\x00" + struct.pack("<I", 1) + b"\x00" + b"\x01" + b"\xfd\x00" + b"\x00")
    sock.sendall(packet(0, b"\x19" + stmt))                            # COM_STMT_CLOSE: no response
    command(b"\x03COMMIT")                                             # I
    command(b"\x0e")                                                   # COM_PING
    command(b"\x03SELECT 1; BEGIN; SELECT 2")                          # multi: I, T, T
    command(b"\x03ROLLBACK")                                           # I
    sock.sendall(packet(0, b"\x01"))                                   # COM_QUIT
    read_idle(sock)
    sock.close()
    return thread_id


def record_raw(my, deprecate_eof):
    relay = Relay((my["CONNLEAK_TEST_MYSQL_HOST"], int(my["CONNLEAK_TEST_MYSQL_PORT"])))
    thread_id = raw_session(relay.port, my, deprecate_eof)
    mode = "deprecate_eof" if deprecate_eof else "classic_eof"
    relay.save(f"mariadb1011_raw_{mode}.txt",
               f"record.py's minimal client / MariaDB 10.11 ({mode}): connect, BEGIN, SELECT rows with '' first, "
               "PREPARE, EXECUTE (binary row), STMT_CLOSE, COMMIT, PING, multi SELECT 1; BEGIN; SELECT 2, "
               "ROLLBACK, QUIT", thread_id)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pg, my = read_env(sys.argv[1]), read_env(sys.argv[2])
    record_postgres(pg)
    record_pymysql(my)
    record_raw(my, deprecate_eof=True)
    record_raw(my, deprecate_eof=False)


if __name__ == "__main__":
    main()
