"""A PostgreSQL client that negotiates SSL: SSLRequest, the server's 'S', then
TLS records. A stand-in server (a thread here) plays PostgreSQL: whatever
follows 'S' is ciphertext to connleak, so only the fact of encryption
matters, not a real handshake. The connection is left open at exit: a leak
whose transaction state is unknown because it is encrypted."""
import socket
import struct
import threading

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
served = threading.Event()


def serve():
    conn, _ = listener.accept()
    assert conn.recv(8) == struct.pack("!ii", 8, 80877103)  # SSLRequest
    conn.sendall(b"S")
    conn.recv(64)  # the "ClientHello"
    conn.sendall(b"\x16\x03\x03\x00\x04abcd")  # a "ServerHello" record
    served.set()
    CONNS.append(conn)


CONNS = []
threading.Thread(target=serve, daemon=True).start()


def open_encrypted():
    s = socket.create_connection(listener.getsockname())  # LEAK-LINE
    s.sendall(struct.pack("!ii", 8, 80877103))
    assert s.recv(1) == b"S"
    s.sendall(b"\x16\x03\x01\x00\x10" + bytes(16))
    s.recv(64)
    return s


# detach(): the descriptor outlives the socket object, so it is still open
# when the exit report is written (not closed by the interpreter's teardown).
KEEP_FD = open_encrypted().detach()
served.wait()
print("done", flush=True)
