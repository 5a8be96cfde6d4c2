"""Takes a process's control socket name before that process exists: forks,
binds "\0connleak.<child pid>" and only then lets the child exec the program
given as arguments. Whoever then asks `connleak dump <child pid>` reaches this
squatter, which answers with a forged report carrying a terminal escape.
Prints "squatting <child pid>"; exits with the child's status."""
import os
import socket
import sys
import threading

r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(r, 1)
    os.close(r)
    os.execv(sys.argv[1], sys.argv[1:])
os.close(r)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(b"\0connleak." + str(pid).encode())
server.listen(4)
print("squatting", pid, flush=True)
os.write(w, b"x")
os.close(w)


def serve():
    while True:
        client, _ = server.accept()
        client.recv(64)
        client.sendall(b'{"tool": "connleak", "pid": %d, "forged": "\x1b]0;owned\x07"}\n' % pid)
        client.close()


threading.Thread(target=serve, daemon=True).start()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
