"""The kill figure of `make mutation`, per mutated module, from mutmut's result files.

A mutant is killed when a test failed (or timed out) with it in place; it survived when
every test it ran passed; "no tests" means no selected test reached its function, and
"not checked" that the run stopped before it. The score is killed / all mutants, so
unreached and unchecked mutants count against it.

    python -m tests.mutation_report [mutants-dir]
"""

import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py); anything else is "suspicious".
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests"}
STATUS |= dict.fromkeys((36, 24, -24, 152, 255), "killed")  # timed out: killed
STATUS |= {34: "skipped", 37: "killed"}
COLUMNS = ("killed", "survived", "no tests", "not checked", "other")


def status_of(code: int | None) -> str:
    if code is None:
        return "not checked"
    status = STATUS.get(code, "other")
    return status if status in COLUMNS else "other"


def main(root: Path) -> int:
    metas = sorted(root.glob("**/*.py.meta"))
    if not metas:
        print(f"no mutmut results under {root}/: run `make mutation` first")
        return 1
    print(f"{'module':<40} {'mutants':>7} " + " ".join(f"{c:>11}" for c in COLUMNS) + "  score")
    total: Counter[str] = Counter()
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(status_of(code) for code in codes.values())
        if not codes:
            continue
        total += counts
        module = str(meta.relative_to(root)).removesuffix(".meta")
        print(_row(module, counts, len(codes)))
    print(_row("all", total, sum(total.values())))
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in sorted(codes.items()):
            if status_of(code) != "killed":
                print(f"  {status_of(code)}: {name}")
    return 0


def _row(name: str, counts: Counter[str], n: int) -> str:
    score = f"{100 * counts['killed'] / n:5.1f}%" if n else "    -"
    return f"{name:<40} {n:>7} " + " ".join(f"{counts[c]:>11}" for c in COLUMNS) + f" {score}"


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "mutants")))
