#!/bin/sh
# Lab helper: runs a command with directories bound over others in its own mount namespace
# (started under `unshare --mount --propagation private`), so each lab host has its own data
# and state directories at the same paths, as separate machines would.
# usage: with-mounts.sh SRC DST [SRC DST ...] -- COMMAND [ARGS...]
set -eu
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  mount --bind "$1" "$2"
  shift 2
done
shift
exec "$@"
