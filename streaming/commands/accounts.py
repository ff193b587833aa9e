"""Confirmed tariff changes as billing's account rows: the seam between meter settings and billing.

Run: ``meterlake meters tariff-changes --accounts accounts.csv --out changes.csv`` then load ``changes.csv`` as
accounts (billing's ``meterlake accounts load``, which merges rows by account, meter point and effective_from).

Billing's accounts CSV (issue 13): ``account, meter_point, tariff, effective_from[, effective_to, bill_day]``; a
row applies from its ``effective_from`` until its ``effective_to`` or the next row of the same account and meter
point, so a tariff change is a new row. A tariff change the meter confirmed becomes the row ``(the account in force
for the meter on that day, meter point, new tariff, day, the in-force row's effective_to and bill_day)``, where
the day is the UK settlement date of the meter's acknowledgement (:func:`meterlake.calendar.locate`): accounts
change by the day, and a change scheduled for a day (``--not-before`` its local midnight) is confirmed on it.

Idempotent: a change the accounts already show (the row in force that day has the tariff) gives no row, so
exporting again after loading adds nothing. Pure, apart from :func:`read_accounts` / :func:`write_rows`.
"""
from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from meterlake import calendar
from meterlake.errors import UsageError

COLUMNS = ("account", "meter_point", "tariff", "effective_from", "effective_to", "bill_day")


def parse_accounts(text: str, source: str) -> list[dict]:
    """The rows of an accounts CSV (dates parsed). Raises UsageError naming the file, line and field."""
    reader = csv.DictReader(io.StringIO(text))
    for needed in COLUMNS[:4]:
        if needed not in (reader.fieldnames or []):
            raise UsageError(f"{source}: line 1: no column {needed!r}", path=source, line=1, field=needed)
    rows = []
    for line, row in enumerate(reader, 2):
        out = {k: (row.get(k) or "").strip() or None for k in COLUMNS}
        for name in ("effective_from", "effective_to"):
            try:
                out[name] = date.fromisoformat(out[name]) if out[name] else None
            except ValueError:
                raise UsageError(f"{source}: line {line}: {name} {out[name]!r} is not a date", path=source,
                                 line=line, field=name) from None
        if out["effective_from"] is None or not out["account"] or not out["meter_point"]:
            raise UsageError(f"{source}: line {line}: account, meter_point and effective_from are required",
                             path=source, line=line, field="effective_from")
        rows.append(out)
    return rows


def in_force(accounts: list[dict], meter_point: str, day: date) -> dict | None:
    """The account row of ``meter_point`` in force on ``day`` (latest effective_from on or before it, not ended)."""
    live = [a for a in accounts if a["meter_point"] == meter_point and a["effective_from"] <= day
            and (a["effective_to"] is None or a["effective_to"] > day)]
    return max(live, key=lambda a: a["effective_from"]) if live else None


def account_rows(changes: list[dict], accounts: list[dict]) -> tuple[list[dict], list[dict]]:
    """``(rows, unmatched)``: the account rows the confirmed ``changes`` (:func:`model.tariff_changes`, in the
    order confirmed) make, and the changes of meters with no account in force on their day. Pure."""
    current = [dict(a) for a in accounts]
    rows: dict[tuple, dict] = {}
    unmatched = []
    for change in sorted(changes, key=lambda c: c["effective_at"]):
        day = calendar.locate(change["effective_at"])[0]
        account = in_force(current, change["meter_point"], day)
        if account is None:
            unmatched.append(change)
            continue
        if account["tariff"] == change["tariff"]:
            continue
        row = {"account": account["account"], "meter_point": change["meter_point"], "tariff": change["tariff"],
               "effective_from": day, "effective_to": account["effective_to"], "bill_day": account["bill_day"]}
        key = (row["account"], row["meter_point"], day)
        current = [a for a in current if (a["account"], a["meter_point"], a["effective_from"]) != key] + [row]
        rows[key] = row  # a second change on the same day replaces the first
    return list(rows.values()), unmatched


def read_accounts(path: str | Path) -> list[dict]:
    path = Path(path)
    try:
        return parse_accounts(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the accounts {path}: {exc}", path=str(path)) from None


def write_rows(rows: list[dict], path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow(["" if r[c] is None else (r[c].isoformat() if isinstance(r[c], date) else r[c])
                             for c in COLUMNS])
