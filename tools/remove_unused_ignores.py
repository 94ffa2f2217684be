"""Delete the `# type: ignore` comments that mypy reports as unused (warn_unused_ignores).

    mypy > mypy.txt; python tools/remove_unused_ignores.py mypy.txt [--only PATH ...] [--skip PATH ...]

Reads mypy's `file:line: error: Unused "type: ignore" comment  [unused-ignore]` lines and edits each such
line: a wholly unused ignore is removed; when mypy names only some codes as unused
(`Unused "type: ignore[a]" comment`), only those codes go. --only/--skip take path prefixes, so a pass can
stay inside the files one owns. Prints what it changed; run mypy again afterwards.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

UNUSED = re.compile(r'^(?P<file>[^:]+):(?P<line>\d+): error: Unused "type: ignore(?:\[(?P<codes>[^\]]*)\])?" comment')
IGNORE = re.compile(r"\s*#\s*type:\s*ignore(?:\[(?P<codes>[^\]]*)\])?")


def strip_codes(text: str, unused: set[str] | None) -> str:
    match = IGNORE.search(text)
    if match is None:
        return text
    kept = [] if unused is None else [c.strip() for c in (match["codes"] or "").split(",") if c.strip() not in unused]
    replacement = f"  # type: ignore[{', '.join(kept)}]" if kept else ""
    return (text[: match.start()] + replacement + text[match.end():]).rstrip() + ("\n" if text.endswith("\n") else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("report")
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--skip", nargs="*", default=[])
    args = parser.parse_args()
    edits: dict[str, dict[int, set[str] | None]] = defaultdict(dict)
    for row in Path(args.report).read_text(encoding="utf-8").splitlines():
        found = UNUSED.match(row)
        if not found:
            continue
        file = found["file"]
        if args.only and not any(file.startswith(p) for p in args.only):
            continue
        if any(file.startswith(p) for p in args.skip):
            continue
        codes = found["codes"]
        edits[file][int(found["line"])] = {c.strip() for c in codes.split(",")} if codes else None
    for file, lines in sorted(edits.items()):
        path = Path(file)
        text = path.read_text(encoding="utf-8").splitlines(keepends=True)
        for number, codes in lines.items():
            text[number - 1] = strip_codes(text[number - 1], codes)
        path.write_text("".join(text), encoding="utf-8")
        print(f"{file}: {len(lines)} line(s)")


if __name__ == "__main__":
    main()
