"""What `import levredis` costs, next to `import redis` (redis-py), from -X importtime.

    python -m bench.importtime [--runs 5]

Each import runs in a fresh interpreter, with byte code cached as an installed
package has it (one import first writes it, whatever PYTHONDONTWRITEBYTECODE
says); the figure is the top-level module's cumulative time, median of the runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys

_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def import_us(module: str) -> int:
    """Cumulative microseconds of ``import module`` in a fresh interpreter."""
    stderr = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                            capture_output=True, text=True, check=True, env=_ENV).stderr
    for line in reversed(stderr.splitlines()):
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1])
    raise RuntimeError(f"no importtime line for {module}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for module in ("levredis", "redis", "coredis"):
        if importlib.util.find_spec(module) is None:
            print(f"{module:10} not installed")
            continue
        import_us(module)  # writes the byte code
        figures = [import_us(module) for _ in range(args.runs)]
        print(f"{module:10} import {statistics.median(figures) / 1000:7.1f} ms "
              f"(median of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
