"""Confirmed tariff changes become billing's account rows from the day the meter confirmed them."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from meterlake.billing import Account
from meterlake.errors import UsageError
from streaming.commands import accounts

MP, OTHER = "2000012345670", "2000012345681"
ACCOUNTS = [Account("A1", MP, "FLAT-1", date(2024, 1, 1), None, 15),
            Account("A2", OTHER, "FLAT-1", date(2024, 1, 1), date(2024, 6, 1))]


def change(tariff, at, mp=MP):
    return {"meter_point": mp, "tariff": tariff, "windows": None, "effective_at": at, "command_id": "c"}


def test_a_confirmed_change_is_a_new_row_of_the_account_from_the_uk_day_it_was_confirmed():
    # 23:30 UTC on 26 March 2024 is still the 26th in the UK (GMT); 23:30 UTC on 1 May 2024 is 2 May (BST)
    rows, unmatched = accounts.account_rows([change("E7-2", datetime(2024, 3, 26, 23, 30, tzinfo=UTC)),
                                             change("GO", datetime(2024, 5, 1, 23, 30, tzinfo=UTC))], ACCOUNTS)
    assert rows == [Account("A1", MP, "E7-2", date(2024, 3, 26), None, 15),
                    Account("A1", MP, "GO", date(2024, 5, 2), None, 15)]
    assert unmatched == []


def test_a_change_the_accounts_already_show_adds_nothing():
    rows, _ = accounts.account_rows([change("FLAT-1", datetime(2024, 3, 1, 12, tzinfo=UTC))], ACCOUNTS)
    assert rows == []
    first, _ = accounts.account_rows([change("GO", datetime(2024, 3, 1, 12, tzinfo=UTC))], ACCOUNTS)
    again, _ = accounts.account_rows([change("GO", datetime(2024, 3, 1, 12, tzinfo=UTC))], ACCOUNTS + first)
    assert again == []


def test_two_changes_on_one_day_leave_the_last():
    rows, _ = accounts.account_rows([change("A", datetime(2024, 3, 1, 9, tzinfo=UTC)),
                                     change("B", datetime(2024, 3, 1, 10, tzinfo=UTC))], ACCOUNTS)
    assert [(r.tariff, r.effective_from) for r in rows] == [("B", date(2024, 3, 1))]


def test_a_meter_without_an_account_that_day_is_unmatched():
    late = change("GO", datetime(2024, 7, 1, 12, tzinfo=UTC), mp=OTHER)  # A2 ended on 1 June
    rows, unmatched = accounts.account_rows([late], ACCOUNTS)
    assert (rows, unmatched) == ([], [late])


def test_the_rows_written_read_back_by_billings_parser(tmp_path):
    rows, _ = accounts.account_rows([change("GO", datetime(2024, 3, 1, 12, tzinfo=UTC))], ACCOUNTS)
    accounts.write_rows(rows, tmp_path / "changes.csv")
    assert (tmp_path / "changes.csv").read_text() == (
        "account,meter_point,tariff,effective_from,effective_to,bill_day\n"
        f"A1,{MP},GO,2024-03-01,,15\n")
    assert accounts.read_accounts(tmp_path / "changes.csv") == rows


def test_a_bad_accounts_line_names_the_file_line_and_field(tmp_path):
    path = tmp_path / "acc.csv"
    path.write_text(f"account,meter_point,tariff,effective_from\nA1,{MP},T,01/03/2024\n")
    with pytest.raises(UsageError) as info:
        accounts.read_accounts(path)
    assert (info.value.details["path"], info.value.details["line"], info.value.details["field"]) == (
        str(path), 2, "effective_from")
    assert "'01/03/2024' is not a date" in info.value.message
