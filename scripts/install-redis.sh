#!/usr/bin/env bash
# Installs redis-server and redis-cli (the tests' cluster fixture and the CLI
# comparisons use it) from the system's packages when either is missing.
set -euo pipefail
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
# The package may start a system service on 6379; tests use their own ports.
redis-server --version
