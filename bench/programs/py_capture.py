"""Python-host connect + close through ctypes (the psycopg 3 pure-Python path):
with the shim, each pair captures a native and a Python stack at the connect
and at the close. Prints nanoseconds per pair, measured 20 Python frames deep.
Usage: py_capture.py LIBPQ_STUB PAIRS"""
import ctypes
import sys
import time

lib = ctypes.CDLL(sys.argv[1])
lib.PQconnectdb.restype = ctypes.c_void_p
lib.PQconnectdb.argtypes = [ctypes.c_char_p]
lib.PQfinish.argtypes = [ctypes.c_void_p]


def deep(frames, pairs):
    if frames:
        return deep(frames - 1, pairs)
    start = time.perf_counter()
    for _ in range(pairs):
        lib.PQfinish(lib.PQconnectdb(b"host=stub dbname=bench"))
    return time.perf_counter() - start


pairs = int(sys.argv[2])
deep(20, pairs // 10)  # warm-up: symbol lookups, interned frames
print(f"{deep(20, pairs) / pairs * 1e9:.1f}")
