"""One file per pool; connleak._bootstrap.HOOKS says which module triggers which."""
