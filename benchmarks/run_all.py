"""Run every benchmark script and print one table of the DESIGN §7 bars."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    rows: list[list[str]] = []
    failed_scripts: list[str] = []
    for script in sorted(HERE.glob("*.py")):
        if script.name.startswith("_") or script.name == "run_all.py":
            continue
        print(f"== {script.name}", flush=True)
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=False
        )
        print(proc.stdout, end="")
        if proc.returncode != 0:
            failed_scripts.append(script.name)
            print(proc.stderr[-2000:], file=sys.stderr)
        for line in proc.stdout.splitlines():
            if line.startswith("BAR|"):
                rows.append([script.stem, *line.split("|")[1:]])
    header = ["script", "bar", "measured", "target", "result"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    bad = [r for r in rows if r[-1] != "PASS"]
    print(f"\n{len(rows) - len(bad)} passed, {len(bad)} failed")
    if failed_scripts:
        print(
            f"scripts that exited non-zero (a failing bar or an error): {', '.join(failed_scripts)}"
        )
    return 1 if bad or failed_scripts else 0


if __name__ == "__main__":
    sys.exit(main())
