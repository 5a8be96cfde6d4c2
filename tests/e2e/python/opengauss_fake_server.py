"""A stand-in openGauss server on loopback, for sock_opengauss.py.

No openGauss server can be installed on Debian, so this speaks just enough of
its protocol, as openGauss's published source defines it (pqcomm.h; auth.cpp's
sendAuthRequest; libpq's fe-connect.cpp and fe-auth.cpp): StartupMessage 3.51
only (anything else gets openGauss's "unsupported frontend protocol" error),
AUTH_REQ_SHA256 (10) with RFC 5802 salt, token and iteration count, the
client's PasswordMessage checked against the password, then AuthenticationOk,
ParameterStatus, BackendKeyData and ReadyForQuery; simple queries (BEGIN,
COMMIT, ROLLBACK, SELECT <n>) with the transaction status in ReadyForQuery;
Terminate.

Runs outside the shim. Line-driven: prints "port N" once listening, serves
each connection on its own thread, and exits when its stdin closes.
The password comes from OPENGAUSS_FAKE_PASSWORD (never printed)."""
import hashlib
import hmac
import itertools
import os
import socket
import struct
import sys
import threading

PASSWORD = os.environ["OPENGAUSS_FAKE_PASSWORD"]
PROTOCOL_351 = (3 << 16) | 51
SSL_REQUEST = 80877103
AUTH_REQ_OK = 0
AUTH_REQ_SHA256 = 10
SHA256_PASSWORD = 2
ITERATIONS = 10000
PROC_NUMBERS = itertools.count(100)  # openGauss's 'K' carries a PGPROC number, not a pid


def stored_key(password, salt_hex, iterations):
    # pg_sha256_encrypt: K = PBKDF2-HMAC-SHA1(password, salt, iterations, 32),
    # ClientKey = HMAC-SHA256(K, "Client Key"), StoredKey = SHA256(ClientKey).
    k = hashlib.pbkdf2_hmac("sha1", password.encode(), bytes.fromhex(salt_hex), iterations, 32)
    client_key = hmac.new(k, b"Client Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest()


def message(kind, body=b""):
    return kind + struct.pack("!I", len(body) + 4) + body


def error(code, text):
    return message(b"E", b"SFATAL\0C" + code + b"\0M" + text + b"\0\0")


def ready(status):
    return message(b"Z", status)


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_message(conn):
    kind = read_exact(conn, 1)
    (length,) = struct.unpack("!I", read_exact(conn, 4))
    return kind, read_exact(conn, length - 4)


def startup(conn):
    """Reads startup-class packets until the StartupMessage; returns its parameters or None."""
    while True:
        (length,) = struct.unpack("!I", read_exact(conn, 4))
        body = read_exact(conn, length - 4)
        (code,) = struct.unpack("!I", body[:4])
        if code == SSL_REQUEST:
            conn.sendall(b"N")
            continue
        if code != PROTOCOL_351:
            text = "unsupported frontend protocol %d.%d." % (code >> 16, code & 0xFFFF)
            conn.sendall(error(b"0A000", text.encode()))
            return None
        fields = body[4:].split(b"\0")
        return dict(zip(fields[0::2], fields[1::2]))


def authenticate(conn):
    salt = os.urandom(32).hex()
    token = os.urandom(4).hex()
    conn.sendall(message(b"R", struct.pack("!II", AUTH_REQ_SHA256, SHA256_PASSWORD) + salt.encode()
                         + token.encode() + struct.pack("!I", ITERATIONS)))
    kind, body = read_message(conn)
    if kind != b"p":
        return False
    # The client sent H = HMAC-SHA256(StoredKey, token) XOR ClientKey: undo the
    # XOR and check that ClientKey hashes to the StoredKey.
    stored = stored_key(PASSWORD, salt, ITERATIONS)
    signature = hmac.new(stored, bytes.fromhex(token), hashlib.sha256).digest()
    try:
        h = bytes.fromhex(body.rstrip(b"\0").decode())
    except ValueError:
        return False
    client_key = bytes(a ^ b for a, b in zip(h, signature))
    return len(h) == 32 and hmac.compare_digest(hashlib.sha256(client_key).digest(), stored)


def answer(sql, status):
    """The server's messages for one simple query, and the new transaction status."""
    word = sql.strip().split(b" ")[0].upper().rstrip(b";")
    if word in (b"BEGIN", b"START"):
        return message(b"C", b"BEGIN\0"), b"T"
    if word in (b"COMMIT", b"ROLLBACK", b"END"):
        return message(b"C", word + b"\0"), b"I"
    if word == b"SELECT":
        value = sql.strip().split(b" ", 1)[1].rstrip(b";")
        row_desc = message(b"T", struct.pack("!H", 1) + b"?column?\0" + struct.pack("!IHIhiH", 0, 0, 23, 4, -1, 0))
        row = message(b"D", struct.pack("!HI", 1, len(value)) + value)
        return row_desc + row + message(b"C", b"SELECT 1\0"), status
    return message(b"E", b"SERROR\0C42601\0Msyntax error\0\0"), b"E" if status != b"I" else b"I"


def serve(conn):
    with conn:
        try:
            params = startup(conn)
            if params is None:
                return
            if not authenticate(conn):
                conn.sendall(error(b"28P01", b"Invalid username/password,login denied."))
                return
            conn.sendall(message(b"R", struct.pack("!I", AUTH_REQ_OK))
                         + message(b"S", b"server_version\x009.2.4\0")
                         + message(b"S", b"client_encoding\0UTF8\0")
                         + message(b"K", struct.pack("!II", next(PROC_NUMBERS), 0x5EED))
                         + ready(b"I"))
            status = b"I"
            while True:
                kind, body = read_message(conn)
                if kind == b"X":
                    return
                if kind != b"Q":
                    conn.sendall(error(b"08P01", b"unsupported message"))
                    return
                reply, status = answer(body.rstrip(b"\0"), status)
                conn.sendall(reply + ready(status))
        except (EOFError, ConnectionError):
            return


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def accept_loop():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    print("port", listener.getsockname()[1], flush=True)
    sys.stdin.read()  # until the test closes stdin


if __name__ == "__main__":
    main()
