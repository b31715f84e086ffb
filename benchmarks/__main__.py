"""Run every ``benchmarks/bench_*.py`` module's ``main()`` in turn."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

import benchmarks


def main() -> int:
    wanted = set(sys.argv[1:])
    status = 0
    for mod in sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")):
        if wanted and mod not in wanted and mod.removeprefix("bench_") not in wanted:
            continue
        print(f"== {mod}")
        try:
            importlib.import_module(f"benchmarks.{mod}").main()
        except Exception:
            traceback.print_exc()
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
