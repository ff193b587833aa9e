"""Reference CSV files loaded whole (the registry, accounts): read as UTF-8, parsed, and refused whole when any
line has a problem, so a bad file never half-replaces what is stored."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from meterlake.errors import UsageError

T = TypeVar("T")
#: How many of a refused file's problems the error carries (the count says how many there were).
MAX_PROBLEMS = 20


def parse_whole(path: str | Path, parse: Callable[[str, str], tuple[T, list]]) -> T:
    """``parse(text, file_name)`` of the file at ``path``, which returns (parsed, problems); a file that cannot be
    read, or any problem, raises :class:`UsageError` naming the file (and the first problems) and nothing is
    returned."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", path=str(path)) from None
    parsed, problems = parse(text, path.name)
    if problems:
        raise UsageError(f"{path}: {len(problems)} problem(s); nothing loaded", path=str(path),
                         problems=problems[:MAX_PROBLEMS])
    return parsed
