"""connleak's entry point into a Python process (see python/connleak).

`connleak run` (or the user, with PYTHONPATH=<this directory>) puts this
directory first on sys.path, so Python's `site` imports this file as
`sitecustomize`. It installs connleak's lazy pool hooks, then runs the
sitecustomize that would have run without it (Debian ships one), as
ddtrace-run and opentelemetry-instrument do. Written for any Python, 2.7
included: a child process of another version must not get a SyntaxError
from it, only nothing.
"""
import os
import sys


def _connleak_start(here):
    if sys.version_info < (3, 7) or os.environ.get("CONNLEAK_PYTHON_HOOKS") == "0":
        return
    try:
        from connleak import _bootstrap

        _bootstrap.install()
    except Exception as exc:  # never break the program's start-up
        sys.stderr.write("connleak: Python pool hooks not installed: %s: %s\n" % (type(exc).__name__, exc))


def _connleak_chain(here):
    """Runs the next sitecustomize on sys.path, ours left out."""
    mine = os.path.realpath(here)
    path = [p for p in sys.path if os.path.realpath(p or os.curdir) != mine]
    if sys.version_info[0] >= 3:
        # The import system's own finder and loader: nothing new is imported.
        external = sys.modules.get("_frozen_importlib_external")
        bootstrap = sys.modules.get("_frozen_importlib")
        if external is None or bootstrap is None:
            return
        spec = external.PathFinder.find_spec("sitecustomize", path)
        if spec is None or spec.loader is None:
            return
        module = bootstrap.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)
    else:
        import imp

        try:
            found = imp.find_module("sitecustomize", path)
        except ImportError:
            return
        try:
            imp.load_module("sitecustomize", *found)
        finally:
            if found[0] is not None:
                found[0].close()


_connleak_here = os.path.dirname(os.path.abspath(__file__))
_connleak_start(_connleak_here)
_connleak_chain(_connleak_here)
