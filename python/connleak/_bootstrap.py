"""Lazy post-import hooks: an adapter runs right after its pool module is
imported, and only then is libconnleak.so looked for.

A program that imports none of the pool modules pays one extra finder on
sys.meta_path (a set lookup per new module) and imports nothing. A new pool
needs one line in HOOKS and one file in adapters/.
"""
import sys

# module -> (adapter module, function called with the freshly executed module)
HOOKS = {
    "sqlalchemy.pool": ("connleak.adapters.sqlalchemy", "hook_pool"),
    "sqlalchemy.engine.create": ("connleak.adapters.sqlalchemy", "hook_create_engine"),
    "asyncpg.pool": ("connleak.adapters.asyncpg", "hook"),
    "aiomysql.pool": ("connleak.adapters.aiomysql", "hook"),
    "psycopg_pool": ("connleak.adapters.psycopg_pool", "hook"),
}

_pending = dict(HOOKS)
_finder = None


class _HookingLoader(object):
    """Runs the real loader, puts it back on the module, then the hook."""

    def __init__(self, loader, name):
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # Code that inspects module.__loader__ / __spec__.loader sees the real one.
        module.__loader__ = self._loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        self._loader.exec_module(module)
        _run_hook(self._name, module)

    def __getattr__(self, attr):
        return getattr(self._loader, attr)


class _PostImportFinder(object):
    def __init__(self):
        self._busy = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _pending or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = None
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        finally:
            self._busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _HookingLoader(spec.loader, fullname)
        return spec

    def invalidate_caches(self):
        pass


def _uninstall():
    _pending.clear()
    try:
        sys.meta_path.remove(_finder)
    except ValueError:
        pass


def _run_hook(name, module):
    target = _pending.pop(name, None)
    if not _pending:
        _uninstall()
    if target is None:
        return
    try:
        from connleak import _native

        if not _native.available():
            _uninstall()  # no libconnleak.so in this process: nothing to report to
            return
        adapter = __import__(target[0], fromlist=[target[1]])
        getattr(adapter, target[1])(module)
    except Exception as exc:  # an adapter must never break the import
        sys.stderr.write("connleak: %s hooks not installed: %s: %s\n" % (name, type(exc).__name__, exc))


def install():
    global _finder
    if _finder is not None:
        return
    _finder = _PostImportFinder()
    sys.meta_path.insert(0, _finder)
    # A pool module imported before us (install() called late) is hooked now.
    for name in list(_pending):
        module = sys.modules.get(name)
        if module is not None:
            _run_hook(name, module)
