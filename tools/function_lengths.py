"""The longest functions in Mailroom's code, by lines from `def` to the last line of the body.

    python tools/function_lengths.py [N] [PATH ...]     # default: the 10 longest, every package

Counts every function and method (nested ones too) in the application packages; tests, bench, docs and the
migrations (straight DDL) are left out because their length says nothing about the design. Re-run after a
merge to compare.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("correspondence", "constituents", "insight", "coding", "config", "intake", "batching", "drafting",
            "casework", "archive", "web", "workers", "demo")


def function_lengths(paths: list[Path]) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if "migrations" in file.parts:
                continue
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    length = (node.end_lineno or node.lineno) - start + 1
                    found.append((length, f"{file.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(found, key=lambda item: (-item[0], item[1]))


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv and argv[0].isdigit() else 10
    rest = argv[1:] if argv and argv[0].isdigit() else argv
    paths = [Path(p).resolve() for p in rest] or [ROOT / p for p in PACKAGES]
    for length, where in function_lengths(paths)[:count]:
        print(f"{length:5d}  {where}")


if __name__ == "__main__":
    main(sys.argv[1:])
