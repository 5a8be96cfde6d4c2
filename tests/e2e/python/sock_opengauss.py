"""A pure-Python openGauss client speaking protocol 3.51, as openGauss's libpq
does (StartupMessage PG_PROTOCOL(3, 51), AUTH_REQ_SHA256 answered with the
RFC 5802 proof H), against opengauss_fake_server.py.
  leak:  one connection leaked in a module global, another used and closed.
Prints the leaked connection's BackendKeyData id.
Arguments: the server's port. The password comes from OPENGAUSS_FAKE_PASSWORD."""
import hashlib
import hmac
import os
import socket
import struct
import sys

PORT = int(sys.argv[1])
PASSWORD = os.environ["OPENGAUSS_FAKE_PASSWORD"]
AUTH_REQ_OK = 0
AUTH_REQ_SHA256 = 10
SHA256_PASSWORD = 2


class GaussError(Exception):
    pass


class GaussConnection:
    def __init__(self, host, port, user, database):
        self.sock = socket.create_connection((host, port))
        self.backend_id = None
        params = b"".join(k + b"\0" + v + b"\0" for k, v in [
            (b"user", user.encode()), (b"database", database.encode()),
            (b"application_name", b"sock_opengauss"), (b"client_encoding", b"UTF8")]) + b"\0"
        self.sock.sendall(struct.pack("!II", 8 + len(params), (3 << 16) | 51) + params)
        self.status = self._login()

    def _read_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise GaussError("server closed the connection")
            data += chunk
        return data

    def _message(self):
        kind = self._read_exact(1)
        (length,) = struct.unpack("!I", self._read_exact(4))
        return kind, self._read_exact(length - 4)

    def _send(self, kind, body):
        self.sock.sendall(kind + struct.pack("!I", len(body) + 4) + body)

    def _login(self):
        while True:
            kind, body = self._message()
            if kind == b"E":
                raise GaussError("login refused")
            if kind == b"R":
                (areq,) = struct.unpack("!I", body[:4])
                if areq == AUTH_REQ_SHA256:
                    self._send(b"p", self._sha256_proof(body[4:]) + b"\0")
                elif areq != AUTH_REQ_OK:
                    raise GaussError("unexpected authentication request %d" % areq)
            elif kind == b"K":
                (self.backend_id,) = struct.unpack("!I", body[:4])
            elif kind == b"Z":
                return body

    @staticmethod
    def _sha256_proof(body):
        # Stored method, 64 hex digits of salt, 8 of token, iteration count (3.51).
        (method,) = struct.unpack("!I", body[:4])
        if method != SHA256_PASSWORD:
            raise GaussError("unexpected password method %d" % method)
        salt = body[4:68].decode()
        token = bytes.fromhex(body[68:76].decode())
        (iterations,) = struct.unpack("!I", body[76:80])
        k = hashlib.pbkdf2_hmac("sha1", PASSWORD.encode(), bytes.fromhex(salt), iterations, 32)
        client_key = hmac.new(k, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        signature = hmac.new(stored, token, hashlib.sha256).digest()
        return bytes(a ^ b for a, b in zip(signature, client_key)).hex().encode()

    def query(self, sql):
        self._send(b"Q", sql.encode() + b"\0")
        rows = []
        while True:
            kind, body = self._message()
            if kind == b"D":
                (length,) = struct.unpack("!I", body[2:6])
                rows.append(body[6:6 + length].decode())
            elif kind == b"E":
                raise GaussError("query failed")
            elif kind == b"Z":
                self.status = body
                return rows

    def close(self):
        self._send(b"X", b"")
        self.sock.close()


def connect():
    return GaussConnection("127.0.0.1", PORT, "gauss", "postgres")


CONN = None


def get_conn():
    return connect()  # LEAK-LINE


def use_and_close():
    conn = connect()
    conn.query("BEGIN")
    assert conn.status == b"T", conn.status
    assert conn.query("SELECT 42") == ["42"]
    conn.query("COMMIT")
    assert conn.status == b"I", conn.status
    conn.close()


CONN = get_conn()
use_and_close()
print("server_id", CONN.backend_id, flush=True)
print("done")
