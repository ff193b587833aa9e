"""Line loss factors from Elexon's D0265 flow ("Line Loss Factors", one file per distributor and year).

The flow, as the distributors publish it (e.g. ``llflond20250401.ptf`` inside ``llflond20250401ptf.zip``)::

    ZHD||D0265001|R|LOND|G|CAPG|20241001140406||||OPER     header: flow D0265, from the distributor LOND
    DIS|LOND                                               the distributor (market participant id)
    LLF|1                                                  a line loss factor class id
    SDT|20250401                                           a settlement date
    SPL|1|1.077                                            settlement period, factor
    …
    ZPT|…                                                  trailer

Factors are per distributor, LLFC, settlement date and period (46/50 on clock-change days). The distributor
maps to its GSP group (:data:`DISTRIBUTOR_GSP_GROUP`), which is how a meter's registry row (GSP group, LLFC)
finds its factor. :func:`parse` streams the flow and keeps only the dates asked for, so one day's factors cost one
pass over the file and memory for that day only.
"""
from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path

from meterlake.errors import UsageError

#: Distribution network operators' market participant ids and their GSP groups.
DISTRIBUTOR_GSP_GROUP = {
    "EELC": "_A", "EMEB": "_B", "LOND": "_C", "MANW": "_D", "MIDE": "_E", "NEEB": "_F", "NORW": "_G",
    "SEEB": "_J", "SOUT": "_H", "SWAE": "_K", "SWEB": "_L", "YELG": "_M", "SPOW": "_N", "HYDE": "_P",
}
COLUMNS = ("gsp_group", "llfc", "settlement_date", "settlement_period", "factor")


def _lines(path: Path) -> Iterator[str]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise UsageError(f"{path}: expected one D0265 file in the zip, found {names}", path=str(path))
            with z.open(names[0]) as raw:
                yield from io.TextIOWrapper(raw, encoding="ascii", errors="replace")
        return
    with open(path, encoding="ascii", errors="replace") as f:
        yield from f


def parse_lines(lines: Iterable[str], days: Iterable[date] | None = None,
                source: str = "D0265") -> list[tuple[str, str, date, int, float]]:
    """``(gsp_group, llfc, settlement_date, settlement_period, factor)`` rows of a D0265 flow, for ``days``
    (None: every day). Raises UsageError for a file that is not a D0265 or names an unknown distributor."""
    wanted = None if days is None else {d.strftime("%Y%m%d") for d in days}
    rows: list[tuple[str, str, date, int, float]] = []
    gsp = llfc = None
    keep = False
    day: date | None = None
    for n, line in enumerate(lines, 1):
        fields = line.rstrip("\r\n").split("|")
        tag = fields[0]
        if n == 1:
            if tag != "ZHD" or len(fields) < 3 or not fields[2].startswith("D0265"):
                raise UsageError(f"{source}: not a D0265 flow (first line {line[:40]!r})", source=source)
            continue
        if tag == "SPL":
            if keep:
                rows.append((gsp, llfc, day, int(fields[1]), float(fields[2])))
        elif tag == "SDT":
            keep = wanted is None or fields[1] in wanted
            if keep:
                day = datetime.strptime(fields[1], "%Y%m%d").date()
        elif tag == "LLF":
            llfc, keep = fields[1], False
        elif tag == "DIS":
            if fields[1] not in DISTRIBUTOR_GSP_GROUP:
                raise UsageError(f"{source}: unknown distributor {fields[1]!r}", source=source)
            gsp, llfc, keep = DISTRIBUTOR_GSP_GROUP[fields[1]], None, False
        elif tag in ("ZPT", ""):
            keep = False
    return rows


def parse(path: str | Path, days: Iterable[date] | None = None) -> list[tuple[str, str, date, int, float]]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"line loss factor file not found: {path}", path=str(path))
    return parse_lines(_lines(path), days, source=str(path))


def digest(paths: Iterable[str | Path]) -> str | None:
    """SHA-256 over the files' bytes (in the order given), or None for no files."""
    paths = list(paths)
    if not paths:
        return None
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
