"""Read the pinned versions/ports table (versions.toml beside this file)."""
from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("versions.toml")


@cache
def table() -> dict[str, dict[str, Any]]:
    with TABLE.open("rb") as fh:
        return tomllib.load(fh)


def service(name: str) -> dict[str, Any]:
    return table()[name]
