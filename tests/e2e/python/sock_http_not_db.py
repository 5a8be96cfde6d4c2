"""Sockets that are not database connections are never reported: a tiny HTTP
server on 127.0.0.1 (its listening and accepted sockets), an HTTP client that
makes a request and is closed, one that makes a request and is left open at
exit, one connected TCP socket that never sends a byte and is left open, and a
UDP socket. Plus one asyncpg connection leaked in a module global: the only
connection in the report."""
import asyncio
import http.client
import http.server
import os
import socket
import threading

import asyncpg


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.server_address[1]


def get(conn):
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"hello\n"


closed_client = http.client.HTTPConnection("127.0.0.1", port)
get(closed_client)
closed_client.close()

OPEN_CLIENT = http.client.HTTPConnection("127.0.0.1", port)  # left open at exit
get(OPEN_CLIENT)
SILENT = socket.create_connection(("127.0.0.1", port))  # connected, never sends a byte, left open
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.sendto(b"not a database", ("127.0.0.1", port))
udp.close()

PARAMS = dict(host=os.environ["CONNLEAK_TEST_PG_HOST"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
              user="postgres", database="postgres")

CONN = None


async def get_conn():
    return await asyncpg.connect(**PARAMS)  # LEAK-LINE


async def main():
    global CONN
    CONN = await get_conn()


asyncio.run(main())
server.shutdown()
print("done")
