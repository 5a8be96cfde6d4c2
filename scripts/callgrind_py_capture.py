#!/usr/bin/env python3
"""Instructions per Python stack capture and per Python pool checkout + return,
counted by callgrind (deterministic, unlike timings on a shared machine).

    callgrind_py_capture.py BUILD_DIR [--python /usr/bin/python3]

Runs bench/programs/py_capture.py (connect + close through ctypes, 20 Python
frames deep: one capture at the connect, one of at most 8 frames at the close)
and bench/programs/py_checkout.py (connleak_checkout + connleak_checkin through
ctypes) under callgrind at two pair counts, and prints the marginal counts:
capture_python_stack inclusive per capture, and the shim's own instructions
(scripts/callgrind_shim_cost.py) per pair. BUILD_DIR needs lib/libconnleak.so
and lib/libpq_stub.so (-DCONNLEAK_BUILD_BENCH=ON)."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind_shim_cost  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
LOW, HIGH = 1000, 3000  # pairs; each program also runs a tenth as many to warm up


def inclusive(path, function):
    """(inclusive instructions, calls) of `function`: callgrind_annotate's caller tree
    prints, per function, its callers ('<' lines, with call counts) then itself ('*')."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--tree=caller", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    for block in out.split("\n\n"):
        lines = block.strip().splitlines()
        star = [line for line in lines if re.match(r"\s*[\d,]+ \([^)]*\)\s+\*", line)]
        if len(star) != 1 or function not in star[0]:
            continue
        total = int(star[0].split()[0].replace(",", ""))
        calls = sum(int(m.group(1).replace(",", "")) for line in lines
                    for m in [re.search(r"<.*\(([\d,]+)x\)", line)] if m)
        return total, calls
    return 0, 0


def run(build, python, argv, out):
    env = dict(os.environ, LD_PRELOAD=os.path.join(build, "lib", "libconnleak.so"))
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python] + argv, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--python", default="/usr/bin/python3")
    a = ap.parse_args()
    stub = os.path.join(a.build, "lib", "libpq_stub.so")
    programs = {
        "connect + close": [os.path.join(ROOT, "bench", "programs", "py_capture.py"), stub],
        "checkout + return": [os.path.join(ROOT, "bench", "programs", "py_checkout.py")],
    }
    pairs = (HIGH - LOW) * 11 // 10
    with tempfile.TemporaryDirectory() as d:
        for name, argv in programs.items():
            own, cap = {}, {}
            for n in (LOW, HIGH):
                out = os.path.join(d, f"{len(own)}.{n}")
                run(a.build, a.python, argv + [str(n)], out)
                own[n] = sum(callgrind_shim_cost.parse(out, r"libconnleak\.so").values())
                cap[n] = inclusive(out, "connleak::shim::capture_python_stack(int)")
            captures = cap[HIGH][1] - cap[LOW][1]
            per_capture = (cap[HIGH][0] - cap[LOW][0]) / captures if captures else float("nan")
            print(f"{name}: shim {(own[HIGH] - own[LOW]) / pairs:,.0f} instructions per pair; "
                  f"capture_python_stack {per_capture:,.0f} per capture ({captures / pairs:g} per pair)")


if __name__ == "__main__":
    sys.exit(main())
