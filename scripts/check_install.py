"""Prove that each install extra pulls exactly one sparse engine: resolve `pip install .[EXTRA]` without installing
(pip's dry run with a JSON report, resolving the whole dependency closure as on a fresh machine) and list the
sparse-convolution distributions it would install. Exit status 1 if an extra pulls none or more than one.

usage (repository root): python scripts/check_install.py [--extras cpu gpu]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ENGINES = {"spconv", "spconv-triton", "cumm"} | {f"spconv-cu{v}" for v in (113, 117, 118, 120, 121, 124, 126)}
EXPECTED = {"cpu": {"spconv"}, "gpu": {"spconv-triton"}}


def sparse_packages(extra: str) -> tuple[set[str], int]:
    """The sparse-engine distributions in the resolved install set of ``.[extra]``, and the set's size."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report), f".[{extra}]"], check=True)
        names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    return {n for n in names if n in ENGINES or n.startswith("spconv")}, len(names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extras", nargs="+", default=sorted(EXPECTED))
    args = parser.parse_args()
    ok = True
    print("| extra | distributions resolved | sparse engine packages | verdict |\n|---|---|---|---|")
    for extra in args.extras:
        found, total = sparse_packages(extra)
        engines = found - {"cumm"}  # cumm is spconv's own kernel library, part of the same engine
        good = engines == EXPECTED.get(extra, engines) and len(engines) == 1
        ok &= good
        print(f"| [{extra}] | {total} | {', '.join(sorted(found)) or '-'} | {'one engine' if good else 'WRONG'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
