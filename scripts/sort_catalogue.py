"""Put the entries of a providers.yaml in alphabetical order, each with the comment lines above it.

    python scripts/sort_catalogue.py [common/providers.yaml]

The text of every entry is kept as written (no YAML round trip, so comments and layout survive);
the file's opening comment stays first and divider lines (`# ----- ... --`) are dropped. The
catalogue test checks that the built-in file is in this order, so a new entry can be added
anywhere and this script run before committing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

NAME = re.compile(r"^([A-Za-z0-9][^:\s]*):")
DIVIDER = re.compile(r"^# -{5,}")


def sort_text(text: str) -> str:
    lines = text.splitlines()
    first_blank = lines.index("") if "" in lines else 0
    preamble = lines[:first_blank]
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    pending: list[str] = []  # top-level comments, waiting for the entry they stand above
    for number, line in enumerate(lines[first_blank:], start=first_blank + 1):
        match = NAME.match(line)
        if match:
            if match.group(1) in blocks:
                raise SystemExit(f"line {number}: provider {match.group(1)!r} is defined twice")
            current = blocks[match.group(1)] = pending + [line]
            pending = []
        elif line.startswith("#"):
            if not DIVIDER.match(line):
                pending.append(line)
        elif line.strip() == "":
            current = None
        elif current is None:
            raise SystemExit(f"line {number}: an indented line outside any entry: {line!r}")
        else:
            current.append(line)
    body = ["\n".join(blocks[name]) for name in sorted(blocks, key=str.lower)]
    return "\n".join(preamble) + "\n\n" + "\n\n".join(body) + "\n"


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parents[1] / "common" / "providers.yaml")
    path.write_text(sort_text(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
