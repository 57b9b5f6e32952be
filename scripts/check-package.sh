#!/usr/bin/env bash
# Builds the wheel and sdist, installs the wheel in a fresh venv, and checks the
# installed package works: `levredis -u redis://... PING` against a throwaway server.
# Then unpacks the sdist, installs it with its test extra (`pip install .[test]`,
# the compiled parser built from the sdist's source) in another fresh venv, and
# runs the unit tests from the unpacked sdist.
set -euo pipefail
PY="${1:-python3}"
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'kill "$(cat "$work/redis.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
"$PY" -m build --outdir "$work/dist" . >/dev/null
ls "$work/dist"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$work"/dist/levredis-*.whl
port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$work/redis.pid" --dir "$work" --logfile "$work/redis.log"
for _ in $(seq 50); do
  "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null && break
  sleep 0.1
done
out="$(cd "$work" && "$work/venv/bin/levredis" -u "redis://127.0.0.1:$port" PING)"
[ "$out" = "PONG" ] || { echo "expected PONG, got: $out"; exit 1; }
(cd "$work" && "$work/venv/bin/python" -c "import levredis, pathlib; assert (pathlib.Path(levredis.__file__).parent / 'py.typed').exists(); print('levredis', levredis.__version__, 'installed from the wheel: py.typed present, levredis PING -> PONG')")
tar -tzf "$work"/dist/levredis-*.tar.gz > "$work/sdist.txt"
grep -q "/LICENSE$" "$work/sdist.txt" || { echo "sdist lacks LICENSE"; exit 1; }
grep -q "/src/levredis/_speedups.c$" "$work/sdist.txt" || { echo "sdist lacks the compiled parser's source"; exit 1; }
(cd "$work" && "$work/venv/bin/python" -c "from levredis._resp import speedups_available; assert speedups_available(), 'the wheel lacks the compiled parser'; print('compiled parser present')")
for needed in tests/conftest.py tests/unit/test_resp.py docs/index.md examples/quickstart.py CHANGELOG.md; do
  grep -q "/$needed$" "$work/sdist.txt" || { echo "sdist lacks $needed"; exit 1; }
done
if grep -q "\.egg-info/" "$work/sdist.txt"; then echo "sdist carries an egg-info"; exit 1; fi
mkdir "$work/unpacked"
tar -xzf "$work"/dist/levredis-*.tar.gz -C "$work/unpacked" --strip-components 1
python3 -m venv "$work/sdist-venv"
"$work/sdist-venv/bin/pip" install --quiet --upgrade pip
"$work/sdist-venv/bin/pip" install --quiet "$work/unpacked[test]"
(cd "$work/unpacked" && "$work/sdist-venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit | tail -n 3)
(cd "$work/unpacked" && "$work/sdist-venv/bin/python" -c "import levredis, levredis._resp as r; assert 'site-packages' in levredis.__file__ and r.speedups_available(); print('unit tests ran from the sdist against levredis built from it, compiled parser included')")
echo "sdist and wheel OK"
