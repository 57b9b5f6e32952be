#!/usr/bin/env bash
# Runs the unit and integration tests on every supported interpreter other than
# the default one, each in a venv of its own (.venv-3.X), from pyenv's versions/
# when pyenv is there. A supported version that cannot be found is reported and
# skipped, never silently. The suites run side by side (each starts its own
# servers on free ports); their output is printed whole, one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
DEFAULT="${1:-python3}"
default_version="$("$DEFAULT" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
root=""
if command -v pyenv >/dev/null; then root="$(pyenv root)"; fi
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
started=()
for version in 3.11 3.12 3.13; do
  if [ "$version" = "$default_version" ]; then
    echo "== Python $version: the default interpreter (make test ran the whole suite on it)"
    continue
  fi
  python=""
  if [ -n "$root" ]; then
    # The newest patch release of that version under pyenv.
    found="$(ls -d "$root"/versions/"$version".* 2>/dev/null | sort -V | tail -n 1 || true)"
    [ -n "$found" ] && [ -x "$found/bin/python$version" ] && python="$found/bin/python$version"
  fi
  if [ -z "$python" ] && command -v "python$version" >/dev/null; then python="$(command -v "python$version")"; fi
  if [ -z "$python" ]; then
    echo "== Python $version: NOT FOUND (no pyenv version, no python$version on PATH): skipped"
    continue
  fi
  venv=".venv-$version"
  stamp="$venv/.installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ src/levredis/_speedups.c -nt "$stamp" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -e '.[test]'
    touch "$stamp"
  fi
  ( "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit tests/integration \
      > "$logs/$version.log" 2>&1; echo $? > "$logs/$version.rc" ) &
  started+=("$version")
done
wait
status=0
for version in "${started[@]}"; do
  echo "== Python $version: $(".venv-$version/bin/python" -c 'import sys; print(sys.version.split()[0])') — unit and integration tests"
  cat "$logs/$version.log"
  if [ "$(cat "$logs/$version.rc")" != "0" ]; then
    echo "== Python $version: FAILED"
    status=1
  fi
done
exit $status
