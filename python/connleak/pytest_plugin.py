"""connleak's pytest plugin: every leaked connection and pool checkout is
blamed on the test (or fixture) that made it.

Enabled by `--connleak` (or by `connleak run pytest ...`, which sets
CONNLEAK_PYTEST), in a process where libconnleak.so is loaded. Registered
through the pytest11 entry point of connleak's dist-info next to this
package, so putting share/connleak/python on PYTHONPATH is enough; or load it
by hand with `-p connleak.pytest_plugin`.

How: before a test runs, and while each fixture is set up, the plugin makes a
context current in the shim (include/connleak/connleak.h,
connleak_context_*); the shim stamps it on every connection and checkout
opened meanwhile. After a test's teardown, what its contexts (the test and
its function-scoped fixtures) opened and left open is that test's leak.
Wider fixtures (class, module, package, session) are judged when their
scope ends, and blamed on the fixture. The shim is only ever called from
pytest hooks here, never from inside a hooked call.
"""
import ctypes
import json
import os
import re

import pytest

# Set by `connleak run`: "fail" (its --fail-on is leaked or flagged) or "report" (never).
ENV = "CONNLEAK_PYTEST"

_FUNCTION_SCOPES = ("function",)


def pytest_addoption(parser):
    group = parser.getgroup("connleak", "connection leaks (connleak)")
    group.addoption("--connleak", action="store_true", default=False,
                    help="attribute leaked connections and pool checkouts to the test or "
                         "fixture that opened them (needs libconnleak.so preloaded: "
                         "`connleak run pytest ...`)")
    group.addoption("--connleak-fail", action="store_true", default=False,
                    help="fail a leaking test in its teardown (implies --connleak)")
    group.addoption("--connleak-threshold", metavar="D", default=None, type=_duration,
                    help="also report a pool checkout held longer than D inside one test "
                         "(e.g. 500ms, 2s, 1m; a bare number is seconds)")


def _duration(text):
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", str(text))
    if not match:
        raise ValueError("not a duration: %r (examples: 500ms, 2s, 1m)" % (text,))
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) * scale


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "connleak(allow=0, ignore=False): connleak's verdict for this test: allow=N lets it "
        "leave up to N connections/checkouts open; ignore=True does not judge it")
    env = os.environ.get(ENV, "")
    fail = config.getoption("connleak_fail") or env == "fail"
    if not (config.getoption("connleak") or fail or env == "report"):
        return
    api = _Api.load()
    if api is None:
        # Tracking asked for, nothing to track with: said once, the run goes on.
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                "connleak: --connleak needs libconnleak.so in the process "
                "(run `connleak run pytest ...`, or LD_PRELOAD it): leaks are not attributed"),
            stacklevel=2)
        return
    config.pluginmanager.register(
        _Tracker(api, fail, config.getoption("connleak_threshold"), config), "connleak-tracker")


class _Api(object):
    """The shim's context calls, bound through ctypes. intern/set take no
    lock anyone waits on long: PyDLL (the GIL is kept). leaks/report scan
    the shim's tables and symbolize: CDLL, the GIL is released meanwhile."""

    @classmethod
    def load(cls):
        try:
            return cls(ctypes.PyDLL(None), ctypes.CDLL(None))
        except (OSError, AttributeError):
            return None

    def __init__(self, py, c):
        u64, cstr, dbl = ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_double
        self._intern = py.connleak_context_intern
        self._intern.argtypes = (cstr, cstr, cstr)
        self._intern.restype = u64
        self._set = py.connleak_context_set
        self._set.argtypes = (u64,)
        self._set.restype = u64
        self._leaks = c.connleak_context_leaks
        self._leaks.argtypes = (u64, dbl)
        self._leaks.restype = ctypes.c_long
        self._report = c.connleak_context_report
        self._report.argtypes = (u64, dbl, ctypes.c_char_p, ctypes.c_ulong)
        self._report.restype = ctypes.c_long

    @staticmethod
    def _text(value):
        return None if value is None else str(value).encode("utf-8", "replace")

    def intern(self, test, fixture=None, scope=None):
        return self._intern(self._text(test), self._text(fixture), self._text(scope))

    def set(self, context):
        return self._set(context)

    def report(self, context, threshold):
        """The context's leaks as the shim describes them, or None if clean."""
        if not context or self._leaks(context, threshold) <= 0:
            return None
        size = 1 << 16
        while True:
            buf = ctypes.create_string_buffer(size)
            n = self._report(context, threshold, buf, size)
            if n < 0:
                return None
            if n < size:
                return json.loads(buf.value.decode("utf-8", "replace"))
            size = n + 1


class _Leaks(object):
    """What one test (or one wide-scoped fixture) left behind."""

    def __init__(self, label):
        self.label = label  # the node id, or "fixture NAME (SCOPE) of NODEID"
        self.connections = []
        self.checkouts = []
        self.held = []  # checkouts held past --connleak-threshold (returned since)
        self.allowed = 0

    def add(self, doc):
        self.connections.extend(doc.get("connections", []))
        self.checkouts.extend(doc.get("checkouts", []))
        if doc.get("held_longest"):
            self.held.append(doc["held_longest"])

    @property
    def count(self):
        return len(self.connections) + len(self.checkouts)

    def failing(self):
        return self.count > self.allowed or bool(self.held)

    def headline(self):
        parts = []
        if self.connections:
            parts.append("%d connection(s)" % len(self.connections))
        if self.checkouts:
            parts.append("%d pool checkout(s)" % len(self.checkouts))
        text = " and ".join(parts) + " left open" if parts else ""
        if self.held:
            held = "a pool checkout held %.1fs" % self.held[0].get("held_seconds", 0)
            text = text + "; " + held if text else held
        if self.allowed:
            text += " (%d allowed by @pytest.mark.connleak)" % self.allowed
        return text

    def to_dict(self):
        """What a pytest-xdist worker sends its controller (execnet carries
        plain dicts, lists and strings only)."""
        return {"label": self.label, "connections": self.connections,
                "checkouts": self.checkouts, "held": self.held, "allowed": self.allowed}

    @classmethod
    def from_dict(cls, data):
        leaks = cls(str(data.get("label", "")))
        leaks.connections = list(data.get("connections", []))
        leaks.checkouts = list(data.get("checkouts", []))
        leaks.held = list(data.get("held", []))
        leaks.allowed = int(data.get("allowed", 0))
        return leaks

    def details(self):
        lines = []
        for entry in self.connections + self.checkouts:
            lines.append(entry.get("text", "").rstrip("\n"))
        for entry in self.held:
            lines.append("held longer than the threshold: " + entry.get("text", "").rstrip("\n"))
        return "\n".join(lines)


def _scope_label(fixturedef, test):
    return "fixture %s (%s) of %s" % (fixturedef.argname, fixturedef.scope, test)


class _Tracker(object):
    def __init__(self, api, fail, threshold, config):
        self.api = api
        self.config = config
        self.fail = fail
        self.threshold = float(threshold or 0)
        self.item = None
        self.contexts = {}  # item nodeid -> [context ids: the test's, its function fixtures']
        self.wide = {}  # id(fixturedef) -> (context, label) of a wider-scoped fixture set up
        self.pending = []  # wide fixtures judged during the running item's teardown
        self.results = []  # _Leaks with something to say, in order

    # --- contexts ---

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self.item = item
        test = self.api.intern(item.nodeid)
        self.contexts[item.nodeid] = [test]
        previous = self.api.set(test)
        try:
            yield
        finally:
            self.api.set(previous)
            self.contexts.pop(item.nodeid, None)
            self.item = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        test = self.item.nodeid if self.item is not None else request.node.nodeid
        context = self.api.intern(test, fixturedef.argname, fixturedef.scope)
        if fixturedef.scope in _FUNCTION_SCOPES:
            self.contexts.setdefault(test, []).append(context)
        else:
            self.wide[id(fixturedef)] = (context, _scope_label(fixturedef, test))
        previous = self.api.set(context)
        try:
            yield
        finally:
            self.api.set(previous)

    def pytest_fixture_post_finalizer(self, fixturedef, request):
        entry = self.wide.pop(id(fixturedef), None)
        if entry is None:
            return
        context, label = entry
        doc = self.api.report(context, self.threshold)
        if doc:
            leaks = _Leaks(label)
            leaks.add(doc)
            if leaks.failing():
                self.results.append(leaks)
                self.pending.append(leaks)

    # --- verdicts ---

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        if call.when != "teardown":
            return
        report = outcome.get_result()
        messages = []
        leaks = self._judge(item)
        if leaks is not None and leaks.failing():
            messages.append("connleak: %s: %s\n%s" % (item.nodeid, leaks.headline(), leaks.details()))
        # A wide fixture ended in this teardown: its leak is the fixture's,
        # reported on the test case whose teardown ended its scope (the only
        # place a JUnit XML can show it), named as the fixture's.
        for fixture in self.pending:
            messages.append("connleak: %s: %s (judged when its scope ended, after this test)\n%s"
                            % (fixture.label, fixture.headline(), fixture.details()))
        self.pending = []
        if messages and self.fail and report.passed:
            report.outcome = "failed"
            report.longrepr = "\n\n".join(messages)

    def _judge(self, item):
        marker = item.get_closest_marker("connleak")
        options = dict(marker.kwargs) if marker is not None else {}
        if options.get("ignore"):
            return None
        leaks = _Leaks(item.nodeid)
        leaks.allowed = int(options.get("allow", 0))
        for context in self.contexts.get(item.nodeid, []):
            doc = self.api.report(context, self.threshold)
            if doc:
                leaks.add(doc)
        if leaks.count == 0 and not leaks.held:
            return None
        if leaks.failing() or leaks.allowed:
            self.results.append(leaks)
        return leaks

    # --- pytest-xdist: each worker is its own process (and writes its own
    # report); the verdicts reach the controller's JUnit XML through xdist's
    # test reports, the summary through workeroutput. ---

    def _is_worker(self):
        return hasattr(self.config, "workerinput")

    def pytest_sessionfinish(self, session):
        if self._is_worker():
            self.config.workeroutput["connleak"] = [leaks.to_dict() for leaks in self.results]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        output = getattr(node, "workeroutput", None) or {}
        for data in output.get("connleak", []):
            self.results.append(_Leaks.from_dict(data))

    def pytest_terminal_summary(self, terminalreporter):
        if not self.results or self._is_worker():
            return
        write = terminalreporter.write_line
        terminalreporter.section("connleak: connections and pool checkouts left open", sep="=")
        failing = 0
        for leaks in self.results:
            state = "" if leaks.failing() else " [allowed]"
            failing += leaks.failing()
            write("%s: %s%s" % (leaks.label, leaks.headline(), state))
            for line in leaks.details().splitlines():
                write("  " + line)
            write("")
        write("connleak: %d test(s)/fixture(s) leaked%s" % (
            failing, "" if self.fail else " (not failed: use --connleak-fail)"))
