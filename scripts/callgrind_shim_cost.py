#!/usr/bin/env python3
"""Instructions a preloaded library adds, read from one callgrind output file.

    callgrind_shim_cost.py CALLGRIND.OUT [--object libconnleak.so] [--by-function]

Prints the instructions executed on the library's behalf: the self cost of
every function in the library, plus the inclusive cost of every call it makes
to another object, except the call a hook makes to the function it wraps (the
callee has the hook's own name: libpq's PQsendQuery behind our PQsendQuery,
libc's recv behind our recv), which the program would have made anyway.

Why not total(with) - total(without): a client talking to a server does a
varying number of loop rounds (a recv that returns EAGAIN, a poll) depending
on the server's timing, which moves a pgbench transaction's count by +-150
instructions between identical runs, more than the hooks cost. Counting the
hooks' own work is deterministic given the calls the program makes; the
caller computes a marginal per-transaction figure from two runs of different
lengths.
"""
import argparse
import collections
import re
import sys


def parse(path, obj_pattern):
    names = {"fn": {}, "ob": {}}
    self_cost = collections.Counter()  # function -> self instructions (the library's functions only)
    call_cost = collections.Counter()  # (caller, callee) -> inclusive instructions
    cur_fn = cur_ob = None
    cfn = cob = None
    pending_call = False

    def name_of(kind, value):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", value.strip())
        if not m:
            return value.strip()
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), "?")

    with open(path, errors="replace") as f:
        for line in f:
            if not line or line[0] == "#":
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if len(parts) < 2:
                    continue
                cost = int(parts[1])
                if pending_call:
                    call_cost[(cur_ob, cur_fn, cob or cur_ob, cfn)] += cost
                    pending_call = False
                    cob = None  # cob= is given per call, only when the callee's object differs
                else:
                    self_cost[(cur_ob, cur_fn)] += cost
                continue
            key, _, value = line.partition("=")
            if key == "ob":
                cur_ob = name_of("ob", value)
            elif key == "fn":
                cur_fn = name_of("fn", value)
                cob = None
            elif key == "cob":
                cob = name_of("ob", value)
            elif key == "cfn":
                cfn = name_of("fn", value)
            elif key == "calls":
                pending_call = True
            elif key in ("fl", "fi", "fe", "cfi", "cfl"):
                pass
    lib = re.compile(obj_pattern)
    per_fn = collections.Counter()
    for (ob, fn), cost in self_cost.items():
        if ob and lib.search(ob):
            per_fn[fn] += cost
    for (ob, fn, cob, cfn), cost in call_cost.items():
        if not (ob and lib.search(ob)) or (cob and lib.search(cob)):
            continue  # not a call out of the library
        if short(cfn) == short(fn):
            continue  # the wrapped function itself
        per_fn[f"{fn} -> {cfn}"] += cost
    return per_fn


def short(fn):
    """A function's bare name, with the shim's naming of hook bodies undone:
    impl_PQexec (libpq_track.cpp) and recv_watched (hooks_socket.cpp) wrap
    PQexec and recv."""
    fn = (fn or "").split("'")[0]  # callgrind's recursion suffix
    fn = fn.split("(")[0].split("::")[-1]
    if fn.startswith("impl_"):
        fn = fn[len("impl_"):]
    if fn.endswith("_watched"):
        fn = fn[: -len("_watched")]
    return fn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--object", default=r"libconnleak\.so")
    ap.add_argument("--by-function", action="store_true")
    a = ap.parse_args()
    per_fn = parse(a.file, a.object)
    if a.by_function:
        for fn, cost in per_fn.most_common():
            print(f"{cost:12d} {fn}")
    print(sum(per_fn.values()))


if __name__ == "__main__":
    sys.exit(main())
