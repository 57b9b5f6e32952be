#!/usr/bin/env bash
# A C compiler for the optional compiled parser (levredis._speedups). Without
# one levredis still installs and runs on its pure-Python parser, but the
# tests check both, so `make` installs gcc when it is missing.
set -euo pipefail
if command -v cc >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq gcc libc6-dev >/dev/null
else
    echo "no C compiler: install gcc (the compiled parser is optional, its tests are not)" >&2
    exit 1
fi
