"""Confirmed tariff changes as billing's account rows: the seam between meter settings and billing.

Run: ``meterlake meters tariff-changes --since D --load`` (the rows merged into the lake's accounts, which the next
``meterlake job bill`` reads), or ``meterlake meters tariff-changes --since D --accounts accounts.csv --out
changes.csv`` and ``meterlake accounts load changes.csv`` for accounts kept as a CSV.

Billing's accounts (issue 13, :mod:`meterlake.billing`, whose parser reads the CSV here too):
``account, meter_point, tariff, effective_from[, effective_to, bill_day]``; a row applies from its
``effective_from`` until its ``effective_to`` or the next row of the same account and meter point, so a tariff
change is a new row. A tariff change the meter confirmed becomes the row ``(the account in force for the meter on
that day, meter point, new tariff, day, the in-force row's effective_to and bill_day)``, where the day is the UK
settlement date of the meter's acknowledgement (:func:`meterlake.calendar.locate`): accounts change by the day,
and a change scheduled for a day (``--not-before`` its local midnight) is confirmed on it.

Idempotent: a change the accounts already show (the row in force that day has the tariff) gives no row, so
exporting again after loading adds nothing. Pure, apart from :func:`read_accounts` / :func:`write_rows`.
"""
from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date
from pathlib import Path

from meterlake import calendar
from meterlake.billing import ACCOUNT_OPTIONAL, ACCOUNT_REQUIRED, Account, parse_accounts
from meterlake.errors import UsageError

COLUMNS = ACCOUNT_REQUIRED + ACCOUNT_OPTIONAL


def in_force(accounts: list[Account], meter_point: str, day: date) -> Account | None:
    """The account row of ``meter_point`` in force on ``day`` (latest effective_from on or before it, not ended)."""
    live = [a for a in accounts if a.meter_point == meter_point and a.effective_from <= day
            and (a.effective_to is None or a.effective_to > day)]
    return max(live, key=lambda a: a.effective_from) if live else None


def account_rows(changes: list[dict], accounts: list[Account]) -> tuple[list[Account], list[dict]]:
    """``(rows, unmatched)``: the account rows the confirmed ``changes`` (:func:`model.tariff_changes`, in the
    order confirmed) make, and the changes of meters with no account in force on their day. Pure."""
    current = list(accounts)
    rows: dict[tuple, Account] = {}
    unmatched = []
    for change in sorted(changes, key=lambda c: c["effective_at"]):
        day = calendar.locate(change["effective_at"])[0]
        account = in_force(current, change["meter_point"], day)
        if account is None:
            unmatched.append(change)
            continue
        if account.tariff == change["tariff"]:
            continue
        row = replace(account, tariff=change["tariff"], effective_from=day)
        key = (row.account, row.meter_point, day)
        current = [a for a in current if (a.account, a.meter_point, a.effective_from) != key] + [row]
        rows[key] = row  # a second change on the same day replaces the first
    return list(rows.values()), unmatched


def read_accounts(path: str | Path) -> list[Account]:
    """The accounts of a CSV, by billing's parser; a problem raises UsageError naming the file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the accounts {path}: {exc}", path=str(path)) from None
    accounts, problems = parse_accounts(text, str(path))
    if problems:
        first = problems[0]
        raise UsageError(f"{path}: line {first['line']}: {first['field'] or 'row'}: {first['problem']}",
                         path=str(path), line=first["line"], field=first["field"], problems=problems[:20])
    return accounts


def write_rows(rows: list[Account], path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in rows:
            values = [getattr(r, c) for c in COLUMNS]
            writer.writerow(["" if v is None else (v.isoformat() if isinstance(v, date) else v) for v in values])
