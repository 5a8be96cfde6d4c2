"""A stand-in for the shim's control socket, run under the shim (so
/proc/PID/maps names libconnleak.so) and bound to its OWN pid's name, as the
shim binds it: `connleak dump` checks that the socket's holder is the pid it
was asked about. Usage: standin_control.py MODE [REPLY_FILE] [TARGET_PID]
  reply    answer each request with REPLY_FILE's content, printing
           "request <repr>" for each (two rounds)
  garbage  answer with something that is not a report (one round)
  silent   never accept (a stuck process)
  squat    bind TARGET_PID's name instead of ours, answer like reply
Prints "ready" once listening, then serves until stdin closes."""
import os
import socket
import sys
import threading

mode = sys.argv[1]
target = int(sys.argv[3]) if mode == "squat" else os.getpid()
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(b"\0connleak." + str(target).encode())
server.listen(4)


def serve():
    while True:
        client, _ = server.accept()
        # Read per request: the test writes the file once it knows our pid.
        reply = open(sys.argv[2], "rb").read() if mode in ("reply", "squat") else b'{"error": "unknown request"}\n'
        request = client.recv(64)
        print("request", repr(request), flush=True)
        client.sendall(reply)
        client.close()


if mode != "silent":
    threading.Thread(target=serve, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
