"""A single-threaded program that forks after its first connection (a
pre-fork server, multiprocessing's fork start method). Python 3.12+ warns at
os.fork() when the process has more than one OS thread: connleak's thread must
not exist unless an option needs it. libpq through ctypes, so it runs on
pyenv's interpreters, which have no psycopg of their own.

Prints "threads N" after connecting; with argument "wait", then waits for a
line on stdin (the test sends it once connleak's alert is out) before forking.
"""
import ctypes
import os
import sys

libpq = ctypes.CDLL("libpq.so.5")
libpq.PQconnectdb.restype = ctypes.c_void_p
libpq.PQconnectdb.argtypes = [ctypes.c_char_p]
libpq.PQstatus.argtypes = [ctypes.c_void_p]
libpq.PQfinish.argtypes = [ctypes.c_void_p]

conn = libpq.PQconnectdb(os.environ["CONNLEAK_TEST_PG_CONNINFO"].encode())
if libpq.PQstatus(conn) != 0:
    sys.exit(3)
print("threads", len(os.listdir("/proc/self/task")), flush=True)
if sys.argv[1:] == ["wait"]:
    sys.stdin.readline()

pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
libpq.PQfinish(conn)
print("done", flush=True)
