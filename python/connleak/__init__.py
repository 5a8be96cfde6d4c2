"""connleak's Python side: pool checkouts reported to libconnleak.so.

Loaded by ../sitecustomize.py. Nothing here runs unless a supported pool
module is imported in a process where libconnleak.so is loaded; see
_bootstrap.py for how, adapters/ for one small file per pool.
"""
