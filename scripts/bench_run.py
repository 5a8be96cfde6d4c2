#!/usr/bin/env python3
"""Runs connleak's benchmarks and writes BENCHMARKS.md (called by scripts/bench.sh).

Every figure is a ratio or a difference between runs made in this same
invocation; runs with and without the shim (or another tool) alternate in
ABBA order, and each figure is the median over rounds with its min..max.

  bench_run.py --build build-bench --out BENCHMARKS.md [--pg-env F] [--mysql-env F]
  bench_run.py --build build-bench --smoke      # micro-benchmarks for ~1 s, sanity checks
"""
import argparse
import atexit
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind_shim_cost  # noqa: E402  (scripts/callgrind_shim_cost.py)

LSAN = "/usr/lib/x86_64-linux-gnu/liblsan.so.0"


# --- small helpers -----------------------------------------------------------

def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x, digits=2):
    if x is None or x != x:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def spread(xs, digits=2):
    """'median (min..max)' of a list."""
    if not xs:
        return "n/a"
    return f"{fmt(med(xs), digits)} ({fmt(min(xs), digits)}..{fmt(max(xs), digits)})"


def env_with(extra=None, preload=None):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("CONNLEAK_OPTIONS", None)
    if preload:
        env["LD_PRELOAD"] = preload
    env.update(extra or {})
    if preload:
        # The shim's clean exit line is opt-in (verbosity=1); the bench quotes it as proof the hooks ran.
        env["CONNLEAK_OPTIONS"] = "verbosity=1:" + env.get("CONNLEAK_OPTIONS", "")
    return env


def run(cmd, env=None, timeout=300, check=True, **kw):
    p = subprocess.run(cmd, env=env, timeout=timeout, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {p.returncode}: {p.stderr[-2000:]}")
    return p


def run_timed(cmd, env=None, timeout=300, check=True):
    """run() plus the CPU time (user + sys, s) the command and its children used."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = run(cmd, env=env, timeout=timeout, check=check)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return p, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def abba(rounds):
    """Orders for `rounds` pairs: AB, BA, AB, ... so neither side always runs first."""
    return [(0, 1) if i % 2 == 0 else (1, 0) for i in range(rounds)]


def read_env_file(path):
    out = {}
    if not path or not os.path.exists(path):
        return None
    for line in open(path):
        m = re.match(r"^(\w+)='(.*)'$", line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def connleak_line(stderr):
    """The shim's one-line exit summary, as proof that its hooks ran."""
    for line in stderr.splitlines():
        if line.startswith("connleak: no leaks:") or line.startswith("SUMMARY: connleak"):
            return line.strip()
    return "(no connleak exit line: no hooked call was seen)"


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.shim = os.path.join(self.build, "lib", "libconnleak.so")
        self.bin = os.path.join(self.build, "bin")
        if args.work:
            self.work = os.path.abspath(args.work)
            os.makedirs(self.work, exist_ok=True)
        else:
            self.work = tempfile.mkdtemp(prefix="connleak-bench-runs.")
            atexit.register(shutil.rmtree, self.work, True)
        self.sections = []  # markdown chunks in order
        self.targets = []   # (what, target, measured, met: True/False/None)
        self.python_capture_ns = None
        self.commands = []  # representative commands, shown in the report
        self.micro_rows = {}
        self.cg_added = {}
        self.sock_cg = {}   # BM_sock_* -> (instructions/iteration plain, with shim), from callgrind

    def cmd_note(self, what, cmd, env_prefix=""):
        text = (env_prefix + " " if env_prefix else "") + shlex.join(cmd)
        # Repository-relative paths; per-run temp dirs as DIR.
        text = re.sub(re.escape(self.work) + r"/[^ '/]+", "DIR", text)
        text = text.replace(os.path.dirname(self.build) + "/", "")
        self.commands.append((what, text))

    def target(self, what, target, measured, met):
        self.targets.append((what, target, measured, met))

    # --- 1. micro-benchmarks ---------------------------------------------------
    def micro(self, rounds, reps, min_time, extra_env=None, bench_filter=None):
        exe = os.path.join(self.bin, "bench_micro")
        cmd = [exe, f"--benchmark_min_time={min_time}", f"--benchmark_repetitions={reps}",
               "--benchmark_format=json"] + ([f"--benchmark_filter={bench_filter}"] if bench_filter else [])
        env_note = "".join(f" {k}={v}" for k, v in (extra_env or {}).items())
        self.cmd_note("micro-benchmarks (plain, then with the shim)" if not bench_filter else
                      f"micro-benchmark {bench_filter} (plain, then with the shim)", cmd,
                      f"[LD_PRELOAD={self.shim}]" + env_note)
        results = {0: [], 1: []}  # side -> list of {name: (cpu_ns, allocs)} per round
        exit_lines = []
        for order in abba(rounds):
            for side in order:
                p = run(cmd, env=env_with(extra_env, preload=self.shim if side else None), timeout=600)
                doc = json.loads(p.stdout)
                per = {}
                for b in doc["benchmarks"]:
                    if b.get("run_type") != "iteration" or b.get("error_occurred"):
                        continue  # a benchmark that failed (SkipWithError) is left out of the table
                    per.setdefault(b["run_name"], []).append((b["cpu_time"], b.get("allocs", float("nan"))))
                results[side].append({k: (med([c for c, _ in v]), med([a for _, a in v])) for k, v in per.items()})
                if side:
                    exit_lines.append(connleak_line(p.stderr))
        names = [n for n in results[0][0] if all(n in r for side in (0, 1) for r in results[side])]
        rows = {}
        for name in names:
            base = [r[name][0] for r in results[0]]
            shim = [r[name][0] for r in results[1]]
            added = [s - b for s, b in zip(shim, base)]
            ratio = [s / b for s, b in zip(shim, base)]
            allocs_base = med([r[name][1] for r in results[0]])
            allocs_shim = med([r[name][1] for r in results[1]])
            rows[name] = dict(base=base, shim=shim, added=added, ratio=ratio, allocs_base=allocs_base,
                              allocs_shim=allocs_shim)
        return rows, exit_lines

    def python_capture(self, rounds):
        """ns per connect+close pair from Python through ctypes, plain and with the shim (ABBA)."""
        stub = os.path.join(self.build, "lib", "libpq_stub.so")
        script = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench",
                                               "programs", "py_capture.py"))
        if not os.path.exists(stub):
            return None
        cmd = ["/usr/bin/python3", script, stub, "20000"]
        self.cmd_note("Python-host connect + close (plain, then with the shim)", cmd, f"[LD_PRELOAD={self.shim}]")
        t = {0: [], 1: []}
        for order in abba(rounds):
            for side in order:
                p = run(cmd, env=env_with(preload=self.shim if side else None), timeout=300)
                t[side].append(float(p.stdout.strip().splitlines()[-1]))
        return dict(base=t[0], shim=t[1], added=[s - b for s, b in zip(t[1], t[0])],
                    ratio=[s / b for s, b in zip(t[1], t[0])])

    def python_checkout(self, rounds):
        """ns per checkout + return pair from Python through ctypes (shim only: without it there is no
        API), and the same loop making two trivial ctypes calls: the pair's cost is the difference."""
        script = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench",
                                               "programs", "py_checkout.py"))
        cmd = ["/usr/bin/python3", script, "20000"]
        self.cmd_note("Python pool checkout + return (with the shim; ctypes baseline in the same run)", cmd,
                      f"LD_PRELOAD={self.shim}")
        t = {0: [], 1: []}
        for _ in range(rounds):
            p = run(cmd, env=env_with(preload=self.shim), timeout=300)
            vals = dict(re.findall(r"^(checkout\+checkin|ctypes baseline) ([0-9.]+) ns", p.stdout, re.M))
            if len(vals) != 2:
                return None
            t[0].append(float(vals["ctypes baseline"]))
            t[1].append(float(vals["checkout+checkin"]))
        return dict(base=t[0], shim=t[1], added=[s - b for s, b in zip(t[1], t[0])],
                    ratio=[s / b for s, b in zip(t[1], t[0])])

    def section_micro(self, smoke=False):
        rounds, reps, min_time = (1, 1, 0.05) if smoke else (5, 3, 0.2)
        rows, exit_lines = self.micro(rounds, reps, min_time)
        # A single-threaded host (its own process: the benchmark exists only in that mode).
        single, _ = self.micro(rounds, reps, min_time, extra_env={"CONNLEAK_BENCH_SINGLE_THREAD": "1"},
                               bench_filter=self.SOCK_SINGLE_ROW)
        rows.update(single)
        self.micro_rows = rows
        what = {
            "BM_pq_connect_close": "libpq connect + close pair (PQconnectdb + PQfinish, 32 frames deep)",
            "BM_pq_exec_idle": "libpq query, idle connection stays idle (PQexec)",
            "BM_pq_send_get_idle": "libpq query, async API (PQsendQuery + 2x PQgetResult: 3 hooked calls)",
            "BM_pq_txn_begin_commit": "libpq BEGIN; SELECT; COMMIT (2 state changes, stack at BEGIN)",
            "BM_mysql_connect_close": "MySQL init + connect + close (mysql_init, mysql_real_connect, mysql_close)",
            "BM_pool_checkout_checkin": "pool checkout + return through the API (connleak_checkout + "
                                        "connleak_checkin, native caller 32 frames deep, a stub PGconn as key)",
            "BM_sock_unwatched": "socket `send` + `recv`, 64 B, socketpair never connect()ed (unwatched fd: the "
                                 "hooks' fast path); 2 hooked calls, **per call = added / 2**",
            "BM_sock_nondb": "socket `send` + `recv`, 64 B, connect()ed 127.0.0.1 TCP socket classified not a "
                             "database (its first bytes are HTTP); 2 hooked calls, **per call = added / 2**",
            "BM_sock_pg": "PostgreSQL socket, one query on an idle connection: `send` Query + `recv` "
                          "CommandComplete + ReadyForQuery, both parsed (added = per query, 2 hooked calls)",
            "BM_sock_mysql": "MySQL socket, one query: `send` COM_QUERY + `recv` OK packet, both parsed "
                             "(added = per query, 2 hooked calls)",
            "BM_sock_badfd_single_thread": "socket `send` + `recv` on a closed descriptor (EBADF) in a "
                                           "**single-threaded host with a database connection open**: the "
                                           "hooks plus glibc's multi-threaded path, which the shim's collector "
                                           "thread switches on; **per call = added / 2**",
            "BM_sock_stub_unwatched": "same as the socketpair row, I/O answered by `sock_stub` (no system "
                                      "call): the hooks alone, **per call = added / 2**",
            "BM_sock_stub_nondb": "same as the non-database TCP row, I/O answered by `sock_stub` (no system "
                                  "call): the hooks alone, **per call = added / 2**",
            "BM_sock_stub_pg": "same as the PostgreSQL row, I/O answered by `sock_stub` with the server's "
                               "bytes: the hooks and the parser alone (added = per query)",
            "BM_sock_stub_mysql": "same as the MySQL row, I/O answered by `sock_stub` with the server's bytes: "
                                  "the hooks and the parser alone (added = per query)",
        }
        lines = ["## 1. Micro-benchmarks (stub client libraries; sockets on 127.0.0.1)", "",
                 f"`bench_micro` (Google Benchmark) runs {rounds} time(s) plain and {rounds} time(s) with "
                 f"`LD_PRELOAD=libconnleak.so`, alternating (ABBA); each run does {reps} repetition(s) of "
                 f"{min_time} s per benchmark. Times are **CPU time per iteration** (the machine is shared, so "
                 "wall time includes waiting for a core); *added* is shim minus plain within the same round, "
                 "median (min..max) over rounds. Allocations: malloc/calloc/realloc calls per iteration on "
                 "the calling thread, counted by a malloc wrapper in the benchmark binary.", "",
                 "| operation | plain ns | with shim ns | added ns | ratio | allocs plain / shim |",
                 "|---|---|---|---|---|---|"]
        for name, r in rows.items():
            lines.append(f"| {what.get(name, name)} | {fmt(med(r['base']), 1)} | {fmt(med(r['shim']), 1)} | "
                         f"{spread(r['added'], 1)} | {fmt(med(r['ratio']))} | "
                         f"{fmt(r['allocs_base'], 1)} / {fmt(r['allocs_shim'], 1)} |")
        py = self.python_capture(rounds)
        if py:
            lines.append(f"| Python host: connect + close via ctypes, 20 Python frames deep (native and Python "
                         f"stacks at both; bench/programs/py_capture.py) | {fmt(med(py['base']), 1)} | "
                         f"{fmt(med(py['shim']), 1)} | {spread(py['added'], 1)} | {fmt(med(py['ratio']))} | - |")
            cc = rows.get("BM_pq_connect_close")
            if cc:
                self.python_capture_ns = (med(py["added"]) - med(cc["added"])) / 2
        pc = self.python_checkout(rounds)
        if pc:
            lines.append(f"| Python host: pool checkout + return via ctypes (connleak_checkout + connleak_checkin), "
                         f"20 Python frames deep, minus two trivial ctypes calls (bench/programs/py_checkout.py) | "
                         f"{fmt(med(pc['base']), 1)} | {fmt(med(pc['shim']), 1)} | {spread(pc['added'], 1)} | "
                         f"{fmt(med(pc['ratio']))} | - |")
        jc = self.journal_cost(rounds, reps, min_time)
        if jc:
            lines.append(f"| the journal's share of the libpq connect + close pair (shim with `report_dir` set, "
                         f"so the crash-safe journal is written, minus the shim without it) | "
                         f"{fmt(med(jc['base']), 1)} | {fmt(med(jc['shim']), 1)} | {spread(jc['added'], 1)} | "
                         f"{fmt(med(jc['ratio']))} | {fmt(jc['allocs_base'], 1)} / {fmt(jc['allocs_shim'], 1)} |")
        lines += ["", "Shim exit line of the last run: `" + (exit_lines[-1] if exit_lines else "") + "`", ""]
        if self.python_capture_ns is not None:
            lines += [f"Python stack capture, estimated per capture: **{fmt(self.python_capture_ns, 1)} ns** "
                      "(the Python-host pair's added cost minus the C pair's, halved: one capture at the "
                      "connect and one at the close; 20 frames at the connect, at most 8 at the close). The "
                      "Python pair also pays ctypes' own call overhead on both sides.", ""]
        lines += self.socket_notes(rows)
        self.sections.append("\n".join(lines))
        cc = rows.get("BM_pq_connect_close")
        if cc:
            v = med(cc["added"])
            self.target("added cost per connect + close (32-frame stack)", "< 1 us", f"{fmt(v / 1000, 2)} us",
                        v < 1000)
        if pc:
            v = med(pc["added"])
            self.target("pool checkout + return from Python (the API pair, 20-frame Python stack; ctypes' own "
                        "calls subtracted)", "<= 3 us", f"{fmt(v / 1000, 2)} us", v <= 3000)
        if jc:
            v = med(jc["added"])
            self.target("added cost of the crash-safe journal per connect + close", "<= 150 ns",
                        f"{fmt(v, 1)} ns", v <= 150)
        q = rows.get("BM_pq_exec_idle")
        if q:
            v = med(q["added"])
            self.target("added cost per query call (PQexec, no state change)", "< 30 ns", f"{fmt(v, 1)} ns",
                        v < 30)
            a = max(q["allocs_shim"], rows.get("BM_pq_send_get_idle", q)["allocs_shim"])
            self.target("allocations per query call (PQexec; PQsendQuery+PQgetResult)", "0",
                        f"{fmt(a, 2)}", a == 0)
        self.socket_targets(rows)
        return rows, exit_lines

    # --- 1b. per-statement activity recording (option statements, issue 15) ----
    ACTIVITY_E2E_ROWS = ("BM_pq_exec_idle", "BM_sock_stub_pg", "BM_sock_stub_mysql")

    def section_activity(self, smoke=False):
        """The cost option `statements` adds per query: the recording alone (bench_activity,
        in-process), and through the shim (bench_micro's query rows with statements=1 vs 0, both
        preloaded, ABBA)."""
        rounds, reps, min_time = (1, 1, 0.05) if smoke else (5, 3, 0.2)
        exe = os.path.join(self.bin, "bench_activity")
        cmd = [exe, f"--benchmark_min_time={min_time}", f"--benchmark_repetitions={reps}",
               "--benchmark_format=json"]
        self.cmd_note("activity recording alone (in-process, no shim)", cmd)
        alone = {}
        for _ in range(rounds):
            doc = json.loads(run(cmd, timeout=300).stdout)
            per = {}
            for b in doc["benchmarks"]:
                if b.get("run_type") == "iteration":
                    per.setdefault(b["run_name"], []).append((b["cpu_time"], b.get("allocs", float("nan"))))
            for k, v in per.items():
                alone.setdefault(k, []).append((med([c for c, _ in v]), med([a for _, a in v])))
        what = {
            "BM_activity_short_statement": "short statement (33 B): raw copy under the seqlock + result read",
            "BM_activity_long_statement": "1 kB statement (only the first 384 B are copied)",
            "BM_activity_prepared_execution": "execution of a prepared statement (text normalized at prepare)",
            "BM_activity_report_read": "report side, for scale: consistent copy + normalize (not on the "
                                       "query path)",
        }
        lines = ["## 1b. Per-statement activity recording (option `statements`)", "",
                 "What each hooked query pays to record its statement: the hot path copies at most 384 bytes "
                 "of raw text into the connection's fixed buffer under a seqlock and reads the coarse "
                 "monotonic clock; literals are replaced by `?` only when a report, dump or alert reads it "
                 "(raw text never leaves the process). CPU ns per iteration, median (min..max) over "
                 f"{rounds} run(s).", "",
                 "| recording | ns | allocs |", "|---|---|---|"]
        for name, v in alone.items():
            lines.append(f"| {what.get(name, name)} | {spread([c for c, _ in v], 1)} | "
                         f"{fmt(med([a for _, a in v]), 1)} |")
        # Through the shim: the same binary, preloaded both times, statements on vs off.
        bench = os.path.join(self.bin, "bench_micro")
        mcmd = [bench, f"--benchmark_min_time={min_time}", f"--benchmark_repetitions={reps}",
                "--benchmark_format=json", "--benchmark_filter=" + "|".join(self.ACTIVITY_E2E_ROWS)]
        self.cmd_note("query rows through the shim, statements=0 then statements=1", mcmd,
                      f"LD_PRELOAD={self.shim} CONNLEAK_OPTIONS=statements=0|1")
        t = {0: [], 1: []}
        for order in abba(rounds):
            for side in order:
                env = env_with({"CONNLEAK_OPTIONS": f"statements={side}"}, preload=self.shim)
                doc = json.loads(run(mcmd, env=env, timeout=600).stdout)
                per = {}
                for b in doc["benchmarks"]:
                    if b.get("run_type") == "iteration" and not b.get("error_occurred"):
                        per.setdefault(b["run_name"], []).append((b["cpu_time"], b.get("allocs", float("nan"))))
                t[side].append({k: (med([c for c, _ in v]), med([a for _, a in v])) for k, v in per.items()})
        lines += ["", "Through the shim (`bench_micro`, preloaded both times, `statements=0` vs `statements=1`, "
                  "ABBA; added = on minus off within a round):", "",
                  "| query | off ns | on ns | added ns | allocs off / on |", "|---|---|---|---|---|"]
        e2e = {}
        for name in self.ACTIVITY_E2E_ROWS:
            if not all(name in r for side in (0, 1) for r in t[side]):
                continue
            off = [r[name][0] for r in t[0]]
            on = [r[name][0] for r in t[1]]
            added = [a - b for a, b in zip(on, off)]
            e2e[name] = added
            lines.append(f"| {name} | {fmt(med(off), 1)} | {fmt(med(on), 1)} | {spread(added, 1)} | "
                         f"{fmt(med([r[name][1] for r in t[0]]), 1)} / {fmt(med([r[name][1] for r in t[1]]), 1)} |")
        lines.append("")
        self.sections.append("\n".join(lines))
        short = alone.get("BM_activity_short_statement")
        if short:
            v = med([c for c, _ in short])
            a = med([x for _, x in short])
            self.target("activity recording per statement (short statement, in-process)", "<= 40 ns, 0 allocs",
                        f"{fmt(v, 1)} ns, {fmt(a, 2)} allocs", v <= 40 and a == 0)
        if "BM_pq_exec_idle" in e2e:
            v = med(e2e["BM_pq_exec_idle"])
            self.target("activity added per PQexec through the shim (statements=1 vs 0)", "<= 40 ns",
                        f"{fmt(v, 1)} ns", v <= 40)
        return alone, e2e
    def journal_cost(self, rounds, reps, min_time):
        """BM_pq_connect_close under the shim, without and with report_dir (which turns the journal
        on), ABBA in the same rounds: the difference is what the journal adds to a pair. The
        journal file is created at the first connect, before the timed iterations."""
        exe = os.path.join(self.bin, "bench_micro")
        cmd = [exe, f"--benchmark_min_time={min_time}", f"--benchmark_repetitions={reps}",
               "--benchmark_format=json", "--benchmark_filter=^BM_pq_connect_close$"]
        self.cmd_note("journal cost (the shim without, then with report_dir)", cmd,
                      f"[LD_PRELOAD={self.shim} CONNLEAK_OPTIONS=report_dir=DIR:print_report=0]")
        per_side = {0: [], 1: []}
        allocs = {0: [], 1: []}
        for order in abba(rounds):
            for side in order:
                d = tempfile.mkdtemp(dir=self.work, prefix="journal.")
                opts = f"report_dir={d}:print_report=0" if side else "print_report=0"
                p = run(cmd, env=env_with({"CONNLEAK_OPTIONS": opts}, preload=self.shim), timeout=600)
                shutil.rmtree(d, ignore_errors=True)
                runs = [b for b in json.loads(p.stdout)["benchmarks"]
                        if b.get("run_type") == "iteration" and not b.get("error_occurred")]
                if not runs:
                    return None
                per_side[side].append(med([b["cpu_time"] for b in runs]))
                allocs[side].append(med([b.get("allocs", float("nan")) for b in runs]))
        added = [j - n for n, j in zip(per_side[0], per_side[1])]
        ratio = [j / n for n, j in zip(per_side[0], per_side[1]) if n]
        return dict(base=per_side[0], shim=per_side[1], added=added, ratio=ratio,
                    allocs_base=med(allocs[0]), allocs_shim=med(allocs[1]))

    # Socket hooks: BM_sock_* in bench/micro_socket.cpp. One iteration is one client send() + one
    # client recv() (the benchmark's server end uses raw system calls, which bypass the hooks).
    SOCK_ROWS = ("BM_sock_unwatched", "BM_sock_nondb", "BM_sock_pg", "BM_sock_mysql")
    SOCK_SINGLE_ROW = "BM_sock_badfd_single_thread"
    SOCK_STUB_ROWS = ("BM_sock_stub_unwatched", "BM_sock_stub_nondb", "BM_sock_stub_pg", "BM_sock_stub_mysql")

    def callgrind_sock(self):
        """Instructions per iteration of each BM_sock_* (plain, shim), counted by callgrind: the
        marginal count between two fixed iteration counts (CONNLEAK_BENCH_ITERATIONS), so set-up,
        start-up and exit drop out. Deterministic, unlike CPU time on a shared machine."""
        if not shutil.which("valgrind"):
            return {}
        exe = os.path.join(self.bin, "bench_micro")
        n1, n2 = 1000, 11000
        out = {}
        for name in self.SOCK_ROWS + (self.SOCK_SINGLE_ROW,):
            counts = {}
            extra = {"CONNLEAK_BENCH_SINGLE_THREAD": "1"} if name == self.SOCK_SINGLE_ROW else {}
            for side in (0, 1):
                for n in (n1, n2):
                    d = tempfile.mkdtemp(dir=self.work, prefix="cg.")
                    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/out", exe,
                           f"--benchmark_filter=^{name}(/|$)"]
                    p = run(cmd, env=env_with({"CONNLEAK_BENCH_ITERATIONS": str(n), **extra},
                                              preload=self.shim if side else None), timeout=300)
                    counts[side, n] = int(re.search(r"Collected : (\d+)", p.stderr).group(1))
                    shutil.rmtree(d, ignore_errors=True)
            out[name] = tuple((counts[side, n2] - counts[side, n1]) / (n2 - n1) for side in (0, 1))
        self.cmd_note("socket micro-benchmarks, instruction counts (N = 1000 and 11000)", cmd,
                      f"[LD_PRELOAD={self.shim} CONNLEAK_BENCH_ITERATIONS=N]")
        return out

    def socket_notes(self, rows):
        if not any(n in rows for n in self.SOCK_ROWS):
            return []
        self.sock_cg = self.callgrind_sock()
        tcp = rows.get("BM_sock_nondb")
        tcp_us = fmt(med(tcp["base"]) / 1000, 1) if tcp else "n/a"
        lines = ["Socket rows (`bench/micro_socket.cpp`): one iteration is ONE client `send()` + ONE client "
                 "`recv()` through the shim's libc hooks, so the cost per call is the added time / 2. The "
                 "benchmark plays the server on the accept()ed end of a 127.0.0.1 TCP connection in the same "
                 "thread, with raw `syscall(SYS_sendto/SYS_recvfrom)` that never reach the hooks (a "
                 "program's own accept()ed ends are never watched: they would cost what the unwatched row "
                 f"does). Most of such an iteration is the kernel's loopback TCP ({tcp_us} us plain), whose "
                 "run-to-run spread is far larger than the hooks' cost, so each scenario is also run with "
                 "its I/O answered by `bench/stub/sock_stub.c` (`BM_sock_stub_*`: the same connection and "
                 "handshake, then `send`/`recv` on the client's descriptor return without a system call, "
                 "`recv` with the server's bytes): the shim runs the same code on the same bytes, and that "
                 "is all that is timed. Both runs have a second (idle) thread, so that these rows compare "
                 "the hooks alone (glibc's `send`/`recv` take a longer path in a multi-threaded process). "
                 "The single-threaded-host row (a process of its own, `CONNLEAK_BENCH_SINGLE_THREAD=1`, "
                 "default options) keeps both runs single-threaded: the shim starts its thread only when an "
                 "option needs it (`threshold`, `txn_threshold`, `idle_threshold`, `checkout_threshold`, "
                 "`dump_signal`, `control`, `metrics_file`; `connleak run` sets `dump_signal` and `control`), "
                 "so a host with a database connection open pays the hooks and nothing of glibc's "
                 "multi-threaded path (see Findings). Instruction counts (callgrind, user space only, "
                 "deterministic: the marginal count between 1,000 and 11,000 iterations) of the real-I/O rows:",
                 ""]
        cg = self.sock_cg
        if cg:
            lines += ["| socket benchmark | instructions/iteration plain | with shim | added per iteration | "
                      "added per call |", "|---|---|---|---|---|"]
            for name in self.SOCK_ROWS + (self.SOCK_SINGLE_ROW,):
                if name in cg:
                    a, b = cg[name]
                    lines.append(f"| `{name}` | {fmt(a, 0)} | {fmt(b, 0)} | {fmt(b - a, 0)} | {fmt((b - a) / 2, 0)} |")
            lines.append("")
        else:
            lines += ["(valgrind not installed: no instruction counts.)", ""]
        return lines

    def socket_targets(self, rows):
        cg = self.sock_cg

        def instr(name, per):
            if name not in cg:
                return ""
            a, b = cg[name]
            return f", callgrind +{fmt((b - a) / per, 0)} instructions"

        def per_call(name):
            return [x / 2 for x in rows[name]["added"]] if name in rows else None
        # The verdict is taken on the stubbed-I/O row (the hooks alone); the real-TCP row's
        # spread is the kernel's, shown next to it.
        stub, tcp = per_call("BM_sock_stub_nondb"), per_call("BM_sock_nondb")
        decisive = stub or tcp
        if decisive:
            parts = []
            if stub:
                parts.append(f"{spread(stub, 1)} ns with the I/O stubbed (`BM_sock_stub_nondb` / 2)")
            if tcp:
                parts.append(f"over loopback TCP {spread(tcp, 1)} ns{instr('BM_sock_nondb', 2)}")
            unw_stub, unw = per_call("BM_sock_stub_unwatched"), per_call("BM_sock_unwatched")
            if unw_stub or unw:
                parts.append("unwatched fd (never connect()ed): " +
                             (f"{spread(unw_stub, 1)} ns stubbed" if unw_stub else "") +
                             (", " if unw_stub and unw else "") +
                             (f"{spread(unw, 1)} ns over a socketpair{instr('BM_sock_unwatched', 2)}" if unw else ""))
            v = med(decisive)
            met = True if v < 20 else ("inconclusive" if min(decisive) < 20 else False)
            self.target("socket `send`/`recv` added per call, non-database fd", "< 20 ns", "; ".join(parts), met)
        single = per_call(self.SOCK_SINGLE_ROW)
        if single:
            v = med(single)
            self.target("I/O call on any descriptor after the first database connection, single-threaded "
                        "host that asks for no threshold, dump or control socket (no shim thread: glibc stays "
                        "on its single-threaded path)", "<= 2 ns",
                        f"{spread(single, 1)} ns (`{self.SOCK_SINGLE_ROW}` / 2, EBADF calls)"
                        f"{instr(self.SOCK_SINGLE_ROW, 2)} per call",
                        True if v <= 2 else ("inconclusive" if min(single) <= 2 else False))
        db = []
        for label, real, stubbed in (("PostgreSQL", "BM_sock_pg", "BM_sock_stub_pg"),
                                     ("MySQL", "BM_sock_mysql", "BM_sock_stub_mysql")):
            parts = []
            if stubbed in rows:
                parts.append(f"{spread(rows[stubbed]['added'], 1)} ns stubbed")
            if real in rows:
                parts.append(f"{spread(rows[real]['added'], 0)} ns over TCP{instr(real, 1)}")
            if parts:
                db.append(f"{label} " + ", ".join(parts))
        if db:
            self.target("query on a database socket (one `send` + one `recv`, both parsed), added per query",
                        "none (measured)", "; ".join(db), "-")
            allocs = [rows[n]["allocs_shim"] for n in ("BM_sock_pg", "BM_sock_mysql", "BM_sock_stub_pg",
                                                       "BM_sock_stub_mysql") if n in rows]
            a = max(allocs)
            self.target("allocations per query on a database socket (PostgreSQL, MySQL)", "0", fmt(a, 2), a == 0)

    # --- 4. scale ------------------------------------------------------------------
    def section_scale(self):
        lines = ["## 4. Scale", ""]
        # 4a. collector in-process: bytes per record, depot, watchdog scan, report phases.
        exe = os.path.join(self.bin, "collector_scale")
        cmd = [exe, "100000", "100", "20", "10000"]
        self.cmd_note("collector costs in-process (no shim)", cmd)
        docs = [json.loads(run(cmd, timeout=300).stdout) for _ in range(3)]
        n = docs[0]["connections"]
        rec_bytes = [d["registry_heap_bytes"] / n for d in docs]
        # A connection that has sent a statement also holds its activity block
        # (made at its first statement; option statements, on by default).
        stmt_bytes = [(d["registry_heap_bytes"] + d["activity_heap_bytes"]) / n for d in docs]
        depot_per_stack = [d["depot_counted_bytes"] / d["stacks"] for d in docs]
        depot_heap_per_stack = [d["depot_heap_bytes"] / d["stacks"] for d in docs]
        scans = [s for d in docs for s in d["scan_ms"]]
        steady = [s for d in docs for s in d["steady_scan_ms"]]
        # 4b. through the shim: RSS per connection, 100k open, plain vs shim.
        scale = os.path.join(self.bin, "bench_scale")
        hold = [scale, "hold", "100000"]
        self.cmd_note("100k connections open (plain, then with the shim; watchdog on)", hold,
                      f"[LD_PRELOAD={self.shim} CONNLEAK_OPTIONS=threshold=1h]")
        per_conn = []
        for order in abba(3):
            got = {}
            for side in order:
                env = env_with({"CONNLEAK_OPTIONS": "threshold=1h"}, self.shim if side else None)
                d = json.loads(run(hold, env=env).stdout)
                got[side] = d["rss_after"] - d["rss_before"]
            per_conn.append((got[1] - got[0]) / 100000)
        # 4c. SIGUSR2 dump with 10k open (the shim has no timing hook for a watchdog tick).
        dump_ms = []
        for _ in range(3):
            d = tempfile.mkdtemp(dir=self.work, prefix="dump.")
            # Dumps are opt-in (dump_signal): without it SIGUSR2 keeps its default action.
            env = env_with({"CONNLEAK_OPTIONS": f"threshold=1h:dump_signal=12:report_dir={d}",
                            "BENCH_DUMP_DIR": d}, self.shim)
            out = json.loads(run([scale, "hold", "10000"], env=env, timeout=300).stdout)
            if out.get("dump_ms") is not None:
                dump_ms.append(out["dump_ms"])
            shutil.rmtree(d, ignore_errors=True)
        self.cmd_note("SIGUSR2 dump with 10k open", [scale, "hold", "10000"],
                      f"[LD_PRELOAD={self.shim} CONNLEAK_OPTIONS=threshold=1h:dump_signal=12:report_dir=DIR BENCH_DUMP_DIR=DIR]")
        # 4d. exit with 10k leaks from 100 sites vs a clean exit, both under the shim.
        exit_ms = {"leak": [], "clean": [], "plain-leak": []}
        json_bytes = []
        self.cmd_note("exit with 10,000 leaks from 100 sites (report written) vs a clean exit",
                      [scale, "leak", "10000", "100"], f"[LD_PRELOAD={self.shim} CONNLEAK_OPTIONS=report_dir=DIR]")
        for i in range(3):
            for mode in (["leak", "clean", "plain-leak"] if i % 2 == 0 else ["plain-leak", "clean", "leak"]):
                d = tempfile.mkdtemp(dir=self.work, prefix="exit.")
                shim = None if mode == "plain-leak" else self.shim
                env = env_with({"CONNLEAK_OPTIONS": f"report_dir={d}"}, shim)
                with open(os.path.join(d, "stderr"), "w") as err:
                    p = subprocess.Popen([scale, "leak" if mode != "clean" else "clean", "10000", "100"],
                                         env=env, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
                    out = p.stdout.read()
                    p.wait(timeout=300)
                    t_end = time.monotonic_ns()
                end_main = json.loads(out)["end_of_main_mono_ns"]
                exit_ms[mode].append((t_end - end_main) / 1e6)
                if mode == "leak":
                    json_bytes += [os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
                                   if f.endswith(".json")]
                shutil.rmtree(d, ignore_errors=True)
        report_added = [a - b for a, b in zip(exit_ms["leak"], exit_ms["clean"])]

        lines += ["Collector measured in-process (`collector_scale`, 3 runs, no preload): heap bytes from "
                  "glibc `mallinfo2` around 100,000 `Registry::on_open` calls (stack and target already "
                  "interned, LiveConn pool included); the watchdog round is `watchdog_scan()` itself, the "
                  "function the collector thread runs every tick, timed over 100,000 open records with both "
                  "thresholds at 1 h, none due, 1 % of the connections in a transaction; a full round "
                  "(every record visited: each shard's lifetime floor made due by an old record opened "
                  "and closed before it) and the steady round that follows it.", "",
                  "| figure | median (min..max) |", "|---|---|",
                  f"| heap bytes per tracked connection that has sent no statement (registry record + "
                  f"map node + LiveConn) | {spread(rec_bytes, 1)} |",
                  f"| heap bytes per tracked connection that has sent a statement (+ its activity block, "
                  f"made at the first statement) | {spread(stmt_bytes, 1)} |",
                  f"| interned 32-frame stack, bytes counted by the depot | {spread(depot_per_stack, 1)} |",
                  f"| interned 32-frame stack, heap bytes incl. the id-slot chunk (100 stacks) | "
                  f"{spread(depot_heap_per_stack, 1)} |",
                  f"| stack depot fixed cost (hash table), bytes | {fmt(docs[0]['depot_fixed_bytes'])} |",
                  f"| RSS per connection through the shim, 100k open (shim minus plain, same round, 3 rounds) | "
                  f"{spread(per_conn, 1)} |",
                  f"| watchdog round over 100,000 open connections, every record visited, ms "
                  f"({len(scans)} rounds) | {spread(scans, 2)} |",
                  f"| watchdog round, steady state (shards whose oldest record is younger than the "
                  f"threshold skipped), ms | {spread(steady, 3)} |",
                  f"| SIGUSR2 dump with 10,000 open (signal to JSON file renamed into place), ms | "
                  f"{spread(dump_ms, 0)} |", "",
                  "Exit report with 10,000 leaks from 100 sites (`bench_scale leak 10000 100`, ~20 frames "
                  "deep, program built with `-g` so frames resolve to file:line): time from the end of `main` "
                  "to the process being reaped, text report on stderr and JSON file in `report_dir`; 3 rounds.",
                  "", "| run | exit time ms, median (min..max) |", "|---|---|",
                  f"| without the shim (10,000 stub handles never freed) | {spread(exit_ms['plain-leak'], 1)} |",
                  f"| shim, everything closed (clean exit line) | {spread(exit_ms['clean'], 1)} |",
                  f"| shim, 10,000 leaks from 100 sites | {spread(exit_ms['leak'], 1)} |",
                  f"| report cost (leaks minus clean, same round) | {spread(report_added, 1)} |", "",
                  f"JSON report size with 10,000 leaks: {fmt(med(json_bytes) / 1e6, 1)} MB. Where the time goes "
                  "(same report built in-process by `collector_scale`, one registry snapshot of 10,000 records "
                  "from 100 real stacks):", "",
                  "| phase | ms, median (min..max) |", "|---|---|",
                  f"| registry snapshot | {spread([d['report_snapshot_ms'] for d in docs], 1)} |",
                  f"| build report model (symbolization of 100 distinct stacks included) | "
                  f"{spread([d['report_build_ms'] for d in docs], 1)} |",
                  f"| JSON text (`to_json_text`, {fmt(docs[0]['report_json_bytes'] / 1e6, 1)} MB) | "
                  f"{spread([d['report_json_ms'] for d in docs], 1)} |",
                  f"| text report (`render_text`) | {spread([d['report_text_ms'] for d in docs], 1)} |", ""]
        self.sections.append("\n".join(lines))
        pc = med(per_conn)
        stack = med(depot_per_stack)
        # What a user sees is the connection that has run statements; the row
        # says both, and passes only on that one.
        sb = med(stmt_bytes)
        self.target("memory per tracked connection", "<= 256 B + interned stack",
                    f"{fmt(pc, 0)} B RSS without statements ({fmt(med(rec_bytes), 0)} B heap); "
                    f"{fmt(sb, 0)} B heap once it has sent a statement; + {fmt(stack, 0)} B per distinct "
                    f"32-frame stack (without statements: {'met' if pc <= 256 else 'missed'}; with: "
                    f"{'met' if sb <= 256 else 'missed'})", pc <= 256 and sb <= 256)
        self.target("watchdog tick, 100k open", "<= 5 ms",
                    f"{fmt(med(scans), 2)} ms every record visited (min {fmt(min(scans), 2)}); "
                    f"{fmt(med(steady), 3)} ms steady", med(scans) <= 5)
        rep = med(report_added)
        mb = med(json_bytes) / 1e6
        self.target("exit report, 10k leaks from 100 sites", "<= 0.3 s and <= 10 MB of JSON",
                    f"{fmt(rep / 1000, 2)} s, {fmt(mb, 1)} MB", rep <= 300 and mb <= 10)

    # --- 2. real clients -----------------------------------------------------------
    def pgbench_cmd(self, pg, mode, seconds, clients=2, transactions=None):
        exe = os.path.join(pg["CONNLEAK_TEST_PG_BINDIR"], "pgbench")
        length = ["-t", str(transactions)] if transactions else ["-T", str(seconds)]
        base = [exe, "-n", "-S", "-c", str(clients), "-j", str(clients)] + length + \
               ["-h", "127.0.0.1", "-p", pg["CONNLEAK_TEST_PG_PORT"], "-U", "postgres", "postgres"]
        if mode == "C":
            base.insert(3, "-C")
        return base

    @staticmethod
    def transactions(stdout):
        m = re.search(r"number of transactions actually processed: (\d+)", stdout)
        if not m:
            raise RuntimeError("no transaction count in pgbench output: " + stdout[-500:])
        return int(m.group(1))

    @staticmethod
    def tps(stdout):
        m = re.search(r"tps = ([0-9.]+)", stdout)
        if not m:
            raise RuntimeError("no tps in pgbench output: " + stdout[-500:])
        return float(m.group(1))

    def measure(self, variants, rounds, argv, parse, timeout=120):
        """Runs `argv` under each variant (name -> f(workdir) -> (prefix, env)) `rounds` times, the
        order rotated every round (ABBA for two). parse(completed) -> (rate, operations) or
        (rate, operations, CPU seconds of the measured loop), the latter when the program times its
        own loop (an interpreter's start-up under valgrind would otherwise swamp the CPU figure).
        Returns name -> {rate: [...], cpu: [us per operation...], line: shim exit line}."""
        names = list(variants)
        out = {n: {"rate": [], "cpu": [], "line": ""} for n in names}
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)] if len(names) > 2 else \
                (names if r % 2 == 0 else names[::-1])
            for name in order:
                d = tempfile.mkdtemp(dir=self.work, prefix="run.")
                prefix, env = variants[name](d)
                p, secs = run_timed(prefix + argv, env=env, timeout=timeout, check=False)
                try:
                    parsed = parse(p)
                    rate, ops = parsed[0], parsed[1]
                    if len(parsed) > 2:
                        secs = parsed[2]
                except Exception as e:
                    raise RuntimeError(f"{name}: {shlex.join(prefix + argv)} exited {p.returncode}: {e}; "
                                       f"stderr: {p.stderr[-800:]}")
                out[name]["rate"].append(rate)
                out[name]["cpu"].append(secs * 1e6 / max(ops, 1))
                out[name]["line"] = connleak_line(p.stderr)
                shutil.rmtree(d, ignore_errors=True)
        return out

    def shim_variants(self):
        return {"plain": lambda d: ([], env_with()), "connleak": lambda d: ([], env_with(preload=self.shim))}

    def pgbench_parse(self, p):
        return self.tps(p.stdout), self.transactions(p.stdout)

    @staticmethod
    def paired(a, b, op):
        return [op(x, y) for x, y in zip(a, b)]

    def callgrind_pg(self, pg):
        """Deterministic instruction counts of pgbench, plain vs shim (see the table text)."""
        lines = ["", "Client instructions per transaction, counted by callgrind (deterministic, unlike time "
                  "on a shared machine): pgbench with one client runs N1 and N2 transactions, plain and with "
                  "the shim; the marginal count (I(N2) - I(N1)) / (N2 - N1) leaves out start-up and exit. The "
                  "shim's start-up cost is the difference at N1 minus N1 times the marginal difference. "
                  "The difference of two runs moves by +-150 instructions per transaction between identical "
                  "runs (a client loop's rounds depend on the server's timing), so the shim's own "
                  "instructions are also counted in the shim's run alone "
                  "(`scripts/callgrind_shim_cost.py`: the self cost of libconnleak.so's functions plus the "
                  "calls they make, except each hook's call to the function it wraps), marginal over the "
                  "same N1, N2: deterministic for a given sequence of calls.", "",
                  "| workload | N1, N2 | instructions/txn plain | with shim | added per txn | added % | "
                  "shim's own instructions per txn | added once per process (start-up + exit) |",
                  "|---|---|---|---|---|---|---|---|"]
        for mode, n1, n2 in (("C", 20, 120), ("S", 200, 2000)):
            counts, own = {}, {}
            for side in (0, 1):
                for n in (n1, n2):
                    d = tempfile.mkdtemp(dir=self.work, prefix="cg.")
                    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/out"] + \
                        self.pgbench_cmd(pg, mode, 0, clients=1, transactions=n)
                    p = run(cmd, env=env_with(preload=self.shim if side else None), timeout=600)
                    counts[side, n] = int(re.search(r"Collected : (\d+)", p.stderr).group(1))
                    if side:
                        own[n] = sum(callgrind_shim_cost.parse(f"{d}/out", r"libconnleak\.so").values())
                    shutil.rmtree(d, ignore_errors=True)
            per = {side: (counts[side, n2] - counts[side, n1]) / (n2 - n1) for side in (0, 1)}
            own_per = (own[n2] - own[n1]) / (n2 - n1)
            once = (counts[1, n1] - counts[0, n1]) - n1 * (per[1] - per[0])
            name = "pgbench -C -S" if mode == "C" else "pgbench -S"
            self.cmd_note(f"{name}, instruction counts", cmd, f"[LD_PRELOAD={self.shim}]")
            lines.append(f"| {name} | {n1}, {n2} | {fmt(per[0], 0)} | {fmt(per[1], 0)} | {fmt(per[1] - per[0], 0)} | "
                         f"{fmt(100 * (per[1] / per[0] - 1), 2)} % | {fmt(own_per, 0)} ({fmt(100 * own_per / per[0], 2)} %) | "
                         f"{fmt(once, 0)} |")
            self.cg_added[mode] = (per[1] - per[0], 100 * (per[1] / per[0] - 1), own_per, 100 * own_per / per[0])
            if mode == "S":
                self.target("client instructions per transaction, pgbench -S (callgrind; the shim's own "
                            "instructions, see section 2)", "<= +2 %",
                            f"+{fmt(own_per, 0)} of {fmt(per[0], 0)} (+{fmt(100 * own_per / per[0], 2)} %); "
                            f"total difference {fmt(per[1] - per[0], 0)} ({fmt(100 * (per[1] / per[0] - 1), 2)} %)",
                            100 * own_per / per[0] <= 2)
        return lines

    def section_pg(self, pg):
        exe = os.path.join(pg["CONNLEAK_TEST_PG_BINDIR"], "pgbench")
        run([exe, "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", pg["CONNLEAK_TEST_PG_PORT"], "-U",
             "postgres", "postgres"], env=env_with())
        cg_lines = self.callgrind_pg(pg)
        lines = ["## 2. Real clients against real servers", "",
                 "PostgreSQL 15 throwaway cluster (`scripts/pg-server.sh`) on 127.0.0.1; pgbench's built-in "
                 "select-only script, 2 clients, 2 threads, 3 s per run; runs with and without "
                 "`LD_PRELOAD=libconnleak.so` alternate (ABBA); ratio = TPS with shim / TPS plain within a "
                 "round, median (min..max) over rounds. `-C` opens a new connection for every transaction "
                 "(the shim's connect + close path); plain `-S` keeps its connections and sends queries "
                 "through the hooked `PQsendQuery`/`PQgetResult`. TPS on a shared 2-core machine is noisy "
                 "(server backends and pgbench compete with other jobs), so the table also gives pgbench's "
                 "own CPU time (user + sys, `getrusage`) per transaction and what the shim adds to it, "
                 "paired per round: the shim's direct cost in the client, which is what can lower TPS.", "",
                 "*Predicted* is the ratio the micro-benchmarks of this run imply: the shim's added CPU per "
                 "transaction (one `PQsendQuery` + `PQgetResult` round, plus a connect + close pair with `-C`) "
                 "added to each client's time per transaction (2 / TPS plain).", "",
                 "| workload | rounds | TPS plain | TPS with shim | TPS ratio | target | predicted | pgbench CPU "
                 "us/txn plain | added CPU us/txn with shim | shim's exit line |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        for mode, target in (("C", 0.98), ("S", 0.995)):
            cmd = self.pgbench_cmd(pg, mode, 3)
            name = "pgbench -C -S (connection per transaction)" if mode == "C" else "pgbench -S (persistent)"
            self.cmd_note(name, cmd, f"[LD_PRELOAD={self.shim}]")
            m = self.measure(self.shim_variants(), 7, cmd, self.pgbench_parse, timeout=60)
            a, b = m["plain"], m["connleak"]
            ratio = self.paired(a["rate"], b["rate"], lambda x, y: y / x)
            added = self.paired(a["cpu"], b["cpu"], lambda x, y: y - x)
            # What the micro-benchmarks of this same run predict: the shim's added CPU per
            # transaction (one async query; plus a connect + close pair with -C) on the
            # critical path of each client, whose transaction takes clients / TPS seconds.
            mr = self.micro_rows
            added_ns = med(mr["BM_pq_send_get_idle"]["added"]) if "BM_pq_send_get_idle" in mr else float("nan")
            if mode == "C":
                added_ns += med(mr["BM_pq_connect_close"]["added"]) if "BM_pq_connect_close" in mr else float("nan")
            predicted = 1 / (1 + added_ns * 1e-9 * med(a["rate"]) / 2)
            lines.append(f"| {name} | 7 | {fmt(med(a['rate']), 0)} | {fmt(med(b['rate']), 0)} | "
                         f"{spread(ratio, 3)} | >= {target} | {fmt(predicted, 4)} | {fmt(med(a['cpu']), 1)} | "
                         f"{spread(added, 2)} | `{b['line']}` |")
            met = True if med(ratio) >= target else ("inconclusive" if max(ratio) >= target else False)
            self.target(f"TPS ratio, {name}", f">= {target}",
                        f"{fmt(med(ratio), 3)} ({fmt(min(ratio), 3)}..{fmt(max(ratio), 3)}); predicted from "
                        f"the micro-benchmarks {fmt(predicted, 4)}; client instructions "
                        f"+{fmt(self.cg_added[mode][1], 2)} % per txn (callgrind)", met)
        lines += cg_lines
        lines.append("")
        self.sections.append("\n".join(lines))

    def section_mysql(self, my):
        host, port = my["CONNLEAK_TEST_MYSQL_HOST"], my["CONNLEAK_TEST_MYSQL_PORT"]
        user, pw, db = my["CONNLEAK_TEST_MYSQL_USER"], my["CONNLEAK_TEST_MYSQL_PASSWORD"], my["CONNLEAK_TEST_MYSQL_DB"]
        slap = shutil.which("mariadb-slap") or shutil.which("mysqlslap")
        load = os.path.join(self.bin, "bench_mysql_load")

        def slap_cmd(detach, queries):
            c = [slap, "--no-defaults", "--protocol=tcp", f"--host={host}", f"--port={port}", f"--user={user}",
                 f"--password={pw}", f"--create-schema={db}", "--concurrency=2", "--iterations=1",
                 f"--number-of-queries={queries}", "--query=SELECT 1"]
            return c + (["--detach=1"] if detach else [])

        def slap_parse(p, queries):
            m = re.search(r"Average number of seconds to run all queries: ([0-9.]+)", p.stdout)
            if not m:
                raise RuntimeError("no timing in mariadb-slap output: " + p.stdout[-300:])
            return queries / max(float(m.group(1)), 1e-3), queries

        def load_parse(p):
            d = json.loads(p.stdout)
            return d["qps"], d["queries"]

        workloads = []  # (name, argv, parse)
        if slap:
            for detach in (True, False):
                # Size the run to ~3 s on this machine.
                probe = 1000 if detach else 5000
                rate, _ = slap_parse(run(slap_cmd(detach, probe), env=env_with(), timeout=120), probe)
                q = max(1000, int(rate * 3))
                name = f"mariadb-slap {'--detach=1 (connection per query)' if detach else '(persistent)'}"
                workloads.append((name, slap_cmd(detach, q), lambda p, q=q: slap_parse(p, q)))
                self.cmd_note(name, [x if not x.startswith("--password=") else "--password=***"
                                     for x in slap_cmd(detach, q)], f"[LD_PRELOAD={self.shim}]")
        for mode in ("connect", "persistent"):
            name = f"bench_mysql_load {mode} ({'connection per query' if mode == 'connect' else 'one connection'})"
            workloads.append((name, [load, mode, "3", host, port, user, pw, db], load_parse))
            self.cmd_note(name, [load, mode, "3", host, port, user, "***", db], f"[LD_PRELOAD={self.shim}]")
        rows = []
        for name, argv, parse in workloads:
            m = self.measure(self.shim_variants(), 5, argv, parse)
            a, b = m["plain"], m["connleak"]
            ratio = self.paired(a["rate"], b["rate"], lambda x, y: y / x)
            added = self.paired(a["cpu"], b["cpu"], lambda x, y: y - x)
            rows.append(f"| {name} | 5 | {fmt(med(a['rate']), 0)} | {fmt(med(b['rate']), 0)} | {spread(ratio, 3)} "
                        f"| {fmt(med(a['cpu']), 1)} | {spread(added, 2)} | `{b['line'].replace(pw, '***')}` |")
        lines = ["### MariaDB", "",
                 "MariaDB throwaway server (`scripts/mariadb-server.sh`), `SELECT 1`, 5 ABBA rounds of ~3 s; "
                 "same columns as above (client CPU from `getrusage`). **`mariadb-slap` of MariaDB 10.11 "
                 "carries a static copy of the client library** (it links no `libmariadb.so`), so its calls "
                 "never reach the shim's MySQL hooks: its rows measure only the cost of having the shim "
                 "loaded. `bench_mysql_load` (bench/programs/mysql_load.c, one client, linked to "
                 "`libmariadb.so.3`) drives the hooks, as the shim's exit line shows. The MySQL hooks were "
                 "being written while this was measured: these rows cover what is in the tree.", "",
                 "| workload | rounds | queries/s plain | queries/s with shim | ratio | client CPU us/query plain "
                 "| added CPU us/query | shim's exit line |",
                 "|---|---|---|---|---|---|---|---|"] + rows + [""]
        self.sections.append("\n".join(lines))

    # --- 3. peers --------------------------------------------------------------------
    def section_peers(self, pg):
        cmd = self.pgbench_cmd(pg, "C", 5)
        tools = self.tool_commands()
        m = self.measure(tools, 3, cmd, self.pgbench_parse, timeout=900)
        recall = self.recall(pg, tools)
        lines = ["## 3. Peers on the same `pgbench -C` workload", "",
                 "Same workload as the `-C` row above but 5 s per run (a connection per transaction, "
                 "select-only), each tool wrapping the unmodified `pgbench` binary; 3 rounds, the order of "
                 "tools rotated each round. TPS ratio = TPS under the tool / TPS plain in the same round; "
                 "most of this workload's time is the server forking a backend per connection, which no "
                 "tool slows down, so the client CPU ratio (pgbench's CPU per transaction under the tool / "
                 "plain, tool's own work included) shows each tool's cost more directly.", "",
                 "| tool | how it is attached | TPS, median | TPS ratio to plain | client CPU us/txn | "
                 "client CPU ratio to plain |", "|---|---|---|---|---|---|"]
        how = {"plain": "-", "connleak": "`LD_PRELOAD=libconnleak.so`",
               "LeakSanitizer": "`LD_PRELOAD=liblsan.so.0` (GCC 12's standalone LSan)",
               "heaptrack": "`heaptrack -o FILE` (1.4)", "valgrind memcheck": "`valgrind --leak-check=full` (3.19)"}
        lines += self.peer_rows(m, tools, how, 0)
        for name, env in (("connleak", f"LD_PRELOAD={self.shim} CONNLEAK_OPTIONS=report_dir=DIR"), ("LeakSanitizer", f"LD_PRELOAD={LSAN} "
                          "LSAN_OPTIONS=exitcode=0:log_path=DIR/lsan"), ("heaptrack", "heaptrack -o DIR/heaptrack"),
                          ("valgrind memcheck", "valgrind --leak-check=full --log-file=DIR/valgrind.log")):
            self.cmd_note(f"pgbench -C under {name} (prefix or environment in brackets)", cmd, f"[{env}]")
        lines += ["", "Recall on `bench/programs/leaky3.c` (real libpq against the same server: 5 requests that "
                  "close their connection, then `open_report_conn()` opens 3 connections and never closes them). "
                  "*Found* = a report whose stack names `open_report_conn`; memory checkers report the "
                  "PGconn's heap blocks, not a connection. *Reports* counts leak records (LSan, valgrind: "
                  "loss records; heaptrack: leaked backtraces; connleak: leaked connections grouped by site).",
                  "", "| tool | found the 3 leaked connections | says it is a connection | reports naming "
                  "`open_report_conn` | unrelated reports | wall time, s |", "|---|---|---|---|---|---|"]
        lines += self.recall_rows(recall)
        lines.append("")
        self.sections.append("\n".join(lines))

    def peer_rows(self, m, tools, how, cpu_digits):
        """One table row per tool of measure()'s result `m`: rate and CPU, each also as a ratio to the
        plain run of the same round."""
        base, rows = m["plain"], []
        for name in tools:
            r = m[name]
            tr = "1" if name == "plain" else spread(self.paired(base["rate"], r["rate"], lambda x, y: y / x), 3)
            cr = "1" if name == "plain" else spread(self.paired(base["cpu"], r["cpu"], lambda x, y: y / x), 2)
            rows.append(f"| {name} | {how[name]} | {fmt(med(r['rate']), 0)} | {tr} | "
                        f"{fmt(med(r['cpu']), cpu_digits)} | {cr} |")
        return rows

    @staticmethod
    def recall_rows(recall):
        return [f"| {name} | {r['found']} | {r['connection']} | {r['related']} | {r['unrelated']} | "
                f"{fmt(r['seconds'], 2)} |" for name, r in recall.items()]

    def section_peers_python(self, pg):
        """The same tools on a Python asyncpg service (target 7 of issue 19). memray, the Python
        allocation profiler, is not packaged for Debian 12 (no `python3-memray`, and PyPI is not
        reachable here), so it is not in the table."""
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "programs")
        load = os.path.normpath(os.path.join(here, "py_asyncpg_load.py"))
        leaky = os.path.normpath(os.path.join(here, "py_leaky3.py"))
        host, port = "127.0.0.1", pg["CONNLEAK_TEST_PG_PORT"]
        cmd = ["/usr/bin/python3", load, host, port, "5"]
        tools = self.tool_commands()
        cli = os.path.join(self.bin, "connleak")
        # What a Python user runs: `connleak run` also installs the pool hooks (checkouts tracked).
        tools["connleak"] = lambda d: ([cli, "run", "--report-dir", d, "--fail-on", "never", "--"], env_with())

        def parse(p):
            m = re.search(r"requests (\d+) wall ([0-9.]+) cpu ([0-9.]+)", p.stdout)
            if not m:
                raise RuntimeError("no figures in the program's output: " + p.stdout[-300:])
            n, wall, cpu = int(m.group(1)), float(m.group(2)), float(m.group(3))
            return n / wall, n, cpu

        m = self.measure(tools, 3, cmd, parse, timeout=900)
        recall = self.recall(pg, tools, ["/usr/bin/python3", leaky, host, port],
                             ["python3", "bench/programs/py_leaky3.py", "HOST", "PORT"])
        lines = ["### Peers on a Python asyncpg service", "",
                 "`bench/programs/py_asyncpg_load.py`: an asyncpg 0.27 pool of 4 connections serving "
                 "`SELECT 1` requests (acquire + fetchval + release) for 5 s after the pool is up, under "
                 "Debian's `/usr/bin/python3` 3.11; the program times its own loop (wall and process CPU), "
                 "so the interpreter's start-up (minutes under valgrind) is left out. connleak is attached "
                 "the way a Python user does it, `connleak run`, which also records every pool checkout "
                 "with its Python stack. 3 rounds, the order of tools rotated each round. memray is not "
                 "in the table: Debian 12 does not package it and PyPI is not reachable from this "
                 "machine.", "",
                 "| tool | how it is attached | requests/s, median | ratio to plain | CPU us/request | "
                 "CPU ratio to plain |", "|---|---|---|---|---|---|"]
        how = {"plain": "-", "connleak": "`connleak run --` (shim + pool hooks)",
               "LeakSanitizer": "`LD_PRELOAD=liblsan.so.0`", "heaptrack": "`heaptrack -o FILE`",
               "valgrind memcheck": "`valgrind --leak-check=full`"}
        lines += self.peer_rows(m, tools, how, 1)
        self.cmd_note("asyncpg pool workload under each tool", ["python3", "bench/programs/py_asyncpg_load.py",
                                                                 "HOST", "PORT", "5"], "[TOOL]")
        lines += ["", "Recall on `bench/programs/py_leaky3.py` (asyncpg: 5 requests that close their "
                  "connection, then `open_report_conn()` opens 3 that are never closed). *Found* = a report "
                  "naming `open_report_conn`, the Python function that leaked; the native tools see the "
                  "interpreter's C frames only.", "",
                  "| tool | found the 3 leaked connections | says it is a connection | reports naming "
                  "`open_report_conn` | unrelated reports | wall time, s |", "|---|---|---|---|---|---|"]
        lines += self.recall_rows(recall)
        lines.append("")
        self.sections.append("\n".join(lines))

    def tool_commands(self):
        """name -> f(workdir) -> (argv prefix, env)."""
        return {
            "plain": lambda d: ([], env_with()),
            "connleak": lambda d: ([], env_with({"CONNLEAK_OPTIONS": f"report_dir={d}"}, self.shim)),
            # exitcode=0: on a leak LSan otherwise _exit()s before stdio is flushed,
            # and pgbench's results (stdout to a pipe) are lost.
            "LeakSanitizer": lambda d: ([], env_with({"LSAN_OPTIONS": f"exitcode=0:log_path={d}/lsan"}, LSAN)),
            "heaptrack": lambda d: (["heaptrack", "-o", f"{d}/heaptrack"], env_with()),
            "valgrind memcheck": lambda d: (["valgrind", "--leak-check=full", f"--log-file={d}/valgrind.log"],
                                            env_with()),
        }

    def recall(self, pg, tools, argv=None, shown=None):
        """Runs the leaky program (leaky3.c, or `argv`) under each tool and counts the reports that
        name `open_report_conn`; `shown` is the command line written in the notes."""
        exe = os.path.join(self.bin, "bench_leaky3")
        argv = argv or [exe, pg["CONNLEAK_TEST_PG_CONNINFO"]]
        out = {}
        for name, make in tools.items():
            if name == "plain":
                continue
            d = tempfile.mkdtemp(dir=self.work, prefix=f"recall.{name}.".replace(" ", "_"))
            prefix, env = make(d)
            t0 = time.monotonic()
            p = run(prefix + argv, env=env, timeout=600, check=False)
            secs = time.monotonic() - t0
            related = unrelated = 0
            connection = "no (heap blocks)"
            if name == "connleak":
                doc = json.load(open(next(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".json"))))
                sites = {}
                for c in doc.get("connections", []):
                    if c.get("status") != "leaked":
                        continue
                    fns = [f.get("function") or "" for f in c["acquired"]["native"] +
                           c["acquired"].get("python", [])]
                    sites.setdefault(tuple(fns), []).append(c)
                for fns, conns in sites.items():
                    if any("open_report_conn" in f for f in fns):
                        related += 1
                    else:
                        unrelated += 1
                connection = f"yes ({doc['summary']['leaked']} leaked connections, with target and state)"
            elif name == "LeakSanitizer":
                text = "".join(open(os.path.join(d, f)).read() for f in os.listdir(d) if f.startswith("lsan"))
                text += p.stderr
                for block in re.split(r"\n\s*\n", text):
                    if re.search(r"(Direct|Indirect) leak of", block):
                        if "open_report_conn" in block:
                            related += 1
                        else:
                            unrelated += 1
            elif name == "heaptrack":
                data = next(os.path.join(d, f) for f in os.listdir(d) if f.startswith("heaptrack"))
                text = run(["heaptrack_print", "-f", data, "-p", "0", "-a", "0", "-T", "0", "-l", "1", "-m", "0",
                            "-n", "100000"], timeout=120).stdout
                for block in re.split(r"\n\s*\n", text):
                    if "leaked over" in block:
                        if "open_report_conn" in block:
                            related += 1
                        else:
                            unrelated += 1
            elif name == "valgrind memcheck":
                text = open(os.path.join(d, "valgrind.log")).read()
                for block in re.split(r"==\d+==\s*\n", text):
                    if re.search(r"are (definitely|indirectly|possibly) lost in loss record", block):
                        if "open_report_conn" in block:
                            related += 1
                        else:
                            unrelated += 1
                    elif re.search(r"^==\d+== (Invalid|Conditional|Syscall param|Use of uninit)", block, re.M):
                        unrelated += 1
            out[name] = dict(found="yes" if related else "**no**", related=related, unrelated=unrelated,
                             connection=connection, seconds=secs)
            shutil.rmtree(d, ignore_errors=True)
        self.cmd_note("recall program under each tool (same prefixes and environments as above)",
                      shown or [exe, "CONNINFO"], "[TOOL]")
        return out

    # --- 5. start-up ---------------------------------------------------------------
    def empty_preload(self):
        """An empty shared library: the floor any LD_PRELOAD tool pays (ld.so opens, maps and
        relocates one more object), timed in the same rounds as the shim."""
        path = os.path.join(self.work, "empty_preload.so")
        if not os.path.exists(path):
            subprocess.run(["cc", "-shared", "-fPIC", "-o", path, "-x", "c", os.devnull], check=True)
        return path

    def startup_times(self, cmd, rounds, preloads):
        """Wall time (ms) of `cmd` per process for each environment (0: plain, then each of
        `preloads`), over `rounds` rounds whose order rotates, after 3 warm-up runs each.
        posix_spawn + waitpid with output to /dev/null: the driver adds the least it can to a
        process that lives ~1 ms (/bin/true), and adds the same to every side."""
        def once(env):
            t0 = time.perf_counter()
            with open(os.devnull, "r+b") as null:
                pid = os.posix_spawn(cmd[0], cmd, env, file_actions=[
                    (os.POSIX_SPAWN_DUP2, null.fileno(), 0), (os.POSIX_SPAWN_DUP2, null.fileno(), 1),
                    (os.POSIX_SPAWN_DUP2, null.fileno(), 2)])
                _, status = os.waitpid(pid, 0)
            ms = (time.perf_counter() - t0) * 1000
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"{shlex.join(cmd)} exited {os.waitstatus_to_exitcode(status)}")
            return ms
        envs = [env_with()] + [env_with(preload=p) for p in preloads]
        for _ in range(3):  # warm the page cache
            for env in reversed(envs):
                once(env)
        t = [[] for _ in envs]
        n = len(envs)
        for i in range(rounds):
            for side in [(i + k) % n for k in range(n)]:
                t[side].append(once(envs[side]))
        return t

    def section_startup(self):
        # (command, rounds, decimals of the ms columns): /bin/true is ~1 ms, so it gets more rounds.
        rows = [(["/usr/bin/python3", "-c", "import psycopg2"], 30, 1), (["/bin/true"], 300, 2)]
        empty = self.empty_preload()
        lines = ["## 5. Start-up", "",
                 "Each command plain, with an empty preloaded library (`cc -shared` of an empty file: "
                 "the floor of any LD_PRELOAD tool) and with the shim, in rotating order each round "
                 "(after 3 warm-up runs each); wall time per process as the driver sees it (posix_spawn "
                 "to waitpid, output to /dev/null; hyperfine is not used: it cannot interleave "
                 "commands). The target is the shim's ratio of medians.", "",
                 "| command | rounds | plain, ms median (min..max) | empty preload | with the shim "
                 "| shim / plain within a round | ratio of medians: empty preload | ratio of medians: "
                 "shim |", "|---|---|---|---|---|---|---|---|"]
        for cmd, rounds, digits in rows:
            self.cmd_note("start-up", cmd, f"[LD_PRELOAD={self.shim}]")
            t = self.startup_times(cmd, rounds, [empty, self.shim])
            ratio = [b / a for a, b in zip(t[0], t[2])]
            floor, r = med(t[1]) / med(t[0]), med(t[2]) / med(t[0])
            lines.append(f"| `{shlex.join(cmd)}` | {rounds} | {spread(t[0], digits)} | "
                         f"{spread(t[1], digits)} | {spread(t[2], digits)} | {spread(ratio, 3)} | "
                         f"{fmt(floor, 3)} | {fmt(r, 3)} |")
            self.target(f"start-up, {shlex.join(cmd)}", "<= 1.03",
                        f"{fmt(r, 3)} (an empty preloaded library: {fmt(floor, 3)})", r <= 1.03)
        lines.append("")
        self.sections.append("\n".join(lines))

    def synthetic_report(self, path, connections, sites=100):
        """A report with `connections` leaked/open/closed connections from `sites` sites, 12-frame
        stacks, a pool per 1,000 connections and a checkout on every tenth: what a big service's
        exit report looks like, without a server holding 10,000 connections."""
        base = datetime.datetime(2026, 11, 21, 10, 0, 0, tzinfo=datetime.timezone.utc)

        def iso(seconds):
            t = base + datetime.timedelta(seconds=seconds)
            return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

        def stack(site):
            frames = [{"address": hex(0x401000 + 16 * i), "module": "/srv/app/bin/service",
                       "function": f"site_{site}_level_{i}", "file": f"/srv/app/src/module_{site % 17}.c",
                       "line": 10 + i} for i in range(8)]
            frames += [{"address": hex(0x7f0000001000 + 16 * i), "module": "/lib/x86_64-linux-gnu/libc.so.6",
                        "function": f"__libc_frame_{i}", "file": None, "line": None} for i in range(4)]
            return {"native": frames}

        conns, checkouts, pools = [], [], []
        for i in range(connections):
            opened = i * 0.01
            status = ("leaked", "open", "closed")[i % 3]
            c = {"id": i + 1, "library": "libpq", "handle": hex(0x55d000000000 + i),
                 "target": f"host=db{i % 4} port=5432 dbname=app user=app", "status": status,
                 "state": "connected", "age_seconds": 600 - opened, "opened_at": iso(opened),
                 "closed_at": iso(opened + 30) if status == "closed" else None, "thread": 1000 + i % 8,
                 "alerts": [{"kind": "lifetime", "after_seconds": 20.0}] if status == "closed" else [],
                 "acquired": stack(i % sites), "pool": i // 1000 + 1,
                 "statements": 3, "last_statement": "SELECT * FROM t WHERE id = ?"}
            if i % 5 == 0:
                c["transaction"] = {"state": "in_transaction", "seconds": 12.5}
            conns.append(c)
            if i % 10 == 0:
                checkouts.append({"id": len(checkouts) + 1, "pool": i // 1000 + 1, "connection": i + 1,
                                  "status": "leaked" if status == "leaked" else "returned",
                                  "checked_out_at": iso(opened + 1),
                                  "returned_at": None if status == "leaked" else iso(opened + 2),
                                  "held_seconds": 1.0, "thread": 1000 + i % 8, "alerts": [],
                                  "acquired": stack((i + 1) % sites)})
        for p in range(connections // 1000 + 1):
            pools.append({"id": p + 1, "kind": "sqlalchemy.QueuePool", "name": f"sqlalchemy#{p + 1}",
                          "target": "postgresql://app@db/app", "max_size": 1000, "connections": 1000,
                          "checked_out": 100})
        report = {"tool": "connleak", "version": "0.1.0", "pid": 4242, "ppid": 1, "argv": ["service"],
                  "trigger": "exit", "generated_at": iso(600),
                  "summary": {"opened": connections, "closed": connections // 3, "open": connections * 2 // 3,
                              "leaked": (connections + 2) // 3, "flagged": connections // 3},
                  "connections": conns, "pools": pools, "checkouts": checkouts}
        with open(path, "w") as f:
            json.dump(report, f)

    def section_html(self):
        chromium = shutil.which("chromium")
        n = 10000
        src = os.path.join(self.work, "connleak.4242.json")
        page = os.path.join(self.work, "timeline.html")
        self.synthetic_report(src, n)
        cli = os.path.join(self.bin, "connleak")
        t0 = time.perf_counter()
        run([cli, "report", "--format", "html", "-o", page, src], check=False)
        render_s = time.perf_counter() - t0
        size_mb = os.path.getsize(page) / 1e6
        self.cmd_note("HTML timeline", [cli, "report", "--format", "html", "-o", "timeline.html",
                                        "connleak.4242.json"])
        lines = ["## 6. HTML timeline, 10,000 connections", "",
                 f"A synthetic exit report of {n} connections (100 sites, 12-frame stacks, 11 pools, "
                 f"{n // 10} checkouts, a transaction on every fifth); `connleak report --format html` "
                 f"took {render_s:.2f} s and wrote {size_mb:.1f} MB.", ""]
        if not chromium:
            lines += ["Not opened: chromium is not installed.", ""]
            self.sections.append("\n".join(lines))
            return
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=60000",
               "--dump-dom", "file://" + page]
        self.cmd_note("HTML timeline load", cmd)
        draw, wall, lanes = [], [], set()
        for _ in range(5):
            t0 = time.perf_counter()
            out = run(cmd, check=False, timeout=300).stdout
            wall.append((time.perf_counter() - t0) * 1000)
            m = re.search(r'data-lanes="(\d+)" data-render-ms="([\d.]+)"', out)
            if m:
                lanes.add(int(m.group(1)))
                draw.append(float(m.group(2)))
        lines += ["Headless Chromium (`--dump-dom`), 5 runs: *draw* is the page's own time from parsing "
                  "the embedded JSON to the last lane in the DOM (`performance.now()`, written to "
                  "`data-render-ms`); *process* is the whole chromium run (start-up, file load, parse, "
                  "script, layout, DOM serialization).", "",
                  "| | ms, median (min..max) |", "|---|---|",
                  f"| draw (in page) | {spread(draw, 0) if draw else 'n/a'} |",
                  f"| chromium process | {spread(wall, 0)} |",
                  f"| lanes drawn | {', '.join(map(str, sorted(lanes))) or 'none'} |", ""]
        self.sections.append("\n".join(lines))
        if draw:
            self.target("HTML timeline, 10k connections: draw in headless Chromium", "<= 3 s",
                        f"{fmt(med(draw), 0)} ms", med(draw) <= 3000)

    # --- report ---------------------------------------------------------------------
    def machine(self):
        cpu = "unknown"
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        cc = "unknown"
        cache = os.path.join(self.build, "CMakeCache.txt")
        if os.path.exists(cache):
            m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", open(cache).read(), re.M)
            if m:
                cc = run([m.group(1), "--version"]).stdout.splitlines()[0]
        glibc = platform.libc_ver()[1]
        mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
        commit = run(["git", "-C", os.path.dirname(self.build), "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
        dirty = run(["git", "-C", os.path.dirname(self.build), "status", "--porcelain", "--untracked-files=no"],
                    check=False).stdout.strip()
        return [f"- CPU: {cpu}, `nproc` = {os.cpu_count()}, {int(mem) // 1024 // 1024} GiB RAM",
                f"- kernel {platform.release()}, glibc {glibc}, {open('/etc/debian_version').read().strip()} "
                "(Debian)",
                f"- compiler: {cc}; build: `CMAKE_BUILD_TYPE=Release` in `{os.path.basename(self.build)}/`",
                f"- source: commit {commit or 'unknown'}{' plus uncommitted changes' if dirty else ''}"]

    def write(self, out_path, started, load_before):
        load_after = os.getloadavg()
        elapsed = time.monotonic() - started
        lines = ["# connleak benchmarks", "",
                 "Generated by `bash scripts/bench.sh` (do not edit by hand) on "
                 f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, "
                 f"in {elapsed / 60:.1f} min.", ""]
        lines += self.machine()
        lines += [f"- load average (1 min) {load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end: "
                  "the machine is shared, so figures are paired (with/without in the same round, order "
                  "alternated) and given as median (min..max).", "",
                  "## Targets", "", "| what | target | measured (median) | met |", "|---|---|---|---|"]
        for what, target, measured, met in self.targets:
            mark = {True: "yes", False: "**no**"}.get(met, met if isinstance(met, str) else "n/a")
            if met == "inconclusive":
                mark = "inconclusive: noise (the spread covers the target)"
            lines.append(f"| {what} | {target} | {measured} | {mark} |")
        lines += ["", "What is behind each missed target, and the proposed fixes, is in "
                  "[Findings](#findings) at the end.", ""]
        lines += self.sections
        lines += ["## Commands", "", "Every command below was run by `scripts/bench.sh` (bench/ holds the "
                  "programs; `[...]` shows the environment of the shim or tool runs).", "", "```"]
        lines += [f"# {what}\n{cmd}" for what, cmd in self.commands]
        lines += ["```", ""]
        findings = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "findings.md")
        if os.path.exists(findings):
            lines += [open(findings).read().rstrip(), ""]
        with open(out_path + ".tmp", "w") as f:
            f.write("\n".join(lines))
        os.replace(out_path + ".tmp", out_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--pg-env")
    ap.add_argument("--mysql-env")
    ap.add_argument("--work")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--only", help="comma-separated sections: micro,activity,scale,pg,peers,mysql,startup,html")
    args = ap.parse_args()
    b = Bench(args)
    if args.smoke:
        rows, exit_lines = b.section_micro(smoke=True)
        print(b.sections[0])
        problems = []
        if not exit_lines or "no leaks" not in exit_lines[-1]:
            problems.append("the shim's run did not end with a clean 'no leaks' line")
        q = rows.get("BM_pq_exec_idle")
        if q and q["allocs_shim"] != 0:
            problems.append(f"the query path allocates ({q['allocs_shim']} per call)")
        for name in Bench.SOCK_ROWS + Bench.SOCK_STUB_ROWS + (Bench.SOCK_SINGLE_ROW,):
            if name not in rows:
                problems.append(f"{name} did not run")
            elif rows[name]["allocs_shim"] != 0:
                problems.append(f"{name} allocates with the shim ({rows[name]['allocs_shim']} per iteration)")
        if problems:
            print("bench smoke: FAILED: " + "; ".join(problems), file=sys.stderr)
            return 1
        print("bench smoke: ok", file=sys.stderr)
        return 0
    started, load_before = time.monotonic(), os.getloadavg()
    only = set(args.only.split(",")) if args.only else None
    pg, my = read_env_file(args.pg_env), read_env_file(args.mysql_env)

    def step(name, fn, *a):
        if only and name not in only:
            return
        log(f"{name} ...")
        t0 = time.monotonic()
        try:
            fn(*a)
        except Exception as e:  # one broken section must not lose the others
            b.sections.append(f"## {name}: FAILED\n\n```\n{e}\n```\n")
            log(f"{name} FAILED: {e}")
        log(f"{name} done in {time.monotonic() - t0:.0f} s")

    step("micro", b.section_micro)
    step("activity", b.section_activity)
    if pg:
        step("pg", b.section_pg, pg)
    else:
        b.sections.append("## 2. Real clients: PostgreSQL\n\nNot run: the PostgreSQL server did not start.\n")
    if my:
        step("mysql", b.section_mysql, my)
    else:
        b.sections.append("### MariaDB\n\nNot run: the MariaDB server did not start.\n")
    if pg:
        step("peers", b.section_peers, pg)
        step("peers", b.section_peers_python, pg)
    step("scale", b.section_scale)
    step("startup", b.section_startup)
    step("html", b.section_html)
    b.write(args.out, started, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
