#!/usr/bin/env bash
# Runs the quickstart against 127.0.0.1:6379, starting a throwaway
# redis-server there when nothing answers (and stopping it afterwards).
set -euo pipefail
PY="${1:-python3}"
cd "$(dirname "$0")/.."
started=""
if ! "$PY" -c 'import socket; socket.create_connection(("127.0.0.1", 6379), 1).close()' 2>/dev/null; then
  dir="$(mktemp -d)"
  redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log"
  started="$dir"
  for _ in $(seq 50); do
    "$PY" -c 'import socket; socket.create_connection(("127.0.0.1", 6379), 1).close()' 2>/dev/null && break
    sleep 0.1
  done
  echo "(started a throwaway redis-server on 127.0.0.1:6379)"
fi
cleanup() {
  if [ -n "$started" ]; then
    kill "$(cat "$started/redis.pid")" 2>/dev/null || true
    rm -rf "$started"
    echo "(stopped the throwaway redis-server)"
  fi
}
trap cleanup EXIT
"$PY" examples/quickstart.py
