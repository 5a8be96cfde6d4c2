"""Pool checkout + return from Python through ctypes, as python/connleak's
adapters make them, 20 Python frames deep: with the shim each checkout takes a
native and a Python stack. Prints nanoseconds per pair, then the same loop
calling a trivial libc function twice through ctypes (the ctypes share).
Usage (under LD_PRELOAD=libconnleak.so): py_checkout.py PAIRS"""
import ctypes
import sys
import time

lib = ctypes.CDLL(None)
lib.connleak_pool_register.restype = ctypes.c_ulonglong
lib.connleak_pool_register.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
lib.connleak_checkout.restype = ctypes.c_ulonglong
lib.connleak_checkout.argtypes = [ctypes.c_ulonglong, ctypes.c_int, ctypes.c_ulonglong, ctypes.c_char_p]
lib.connleak_checkin.restype = ctypes.c_int
lib.connleak_checkin.argtypes = [ctypes.c_ulonglong, ctypes.c_int]
labs = lib.labs
labs.restype = ctypes.c_long
labs.argtypes = [ctypes.c_long]

pool = lib.connleak_pool_register(b"bench.Pool", b"bench#1", b"", 4)


def deep(frames, pairs, body):
    if frames:
        return deep(frames - 1, pairs, body)
    start = time.perf_counter()
    for _ in range(pairs):
        body()
    return time.perf_counter() - start


def pair():
    lib.connleak_checkin(lib.connleak_checkout(pool, 0, 0, None), 0)


def baseline():
    labs(labs(-1))


pairs = int(sys.argv[1])
deep(20, pairs // 10, pair)
print(f"checkout+checkin {deep(20, pairs, pair) / pairs * 1e9:.1f} ns")
deep(20, pairs // 10, baseline)
print(f"ctypes baseline {deep(20, pairs, baseline) / pairs * 1e9:.1f} ns")
