"""Account ids are personal identifiers: the lake's billing files and accounts tables hold their pseudonyms, while
`job bill` takes and answers clear ids (the clear ids kept outside the lake, in the state directory)."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from jobs.bill import inputs
from jobs.bill import job as bill
from jobs.clean import job as clean
from jobs.registry import job as registry_job
from meterlake import config, pseudonym
from meterlake.lake.files import open_lake
from tests.jobs.helpers import day_of, write_lake_reads

DAY = date(2024, 3, 4)
METER = "2000000000019"
TARIFF = """
[tariffs.flat-20]
kind = "flat"
standing_p_per_day = 50
[[tariffs.flat-20.rates]]
effective_from = "2024-01-01"
unit_p = 20.0
"""


@pytest.fixture(scope="module")
def billed(tmp_path_factory, spark):
    base = tmp_path_factory.mktemp("account-pseudonyms")
    (base / "lake.key").write_text("a key of the lake's pseudonyms, for this test only\n")
    s = config.load(None)
    settings = s.model_copy(update={
        "paths": s.paths.model_copy(update={"state_dir": base / "state", "lake": str(base / "lake")}),
        "lake": s.lake.model_copy(update={"pseudonym_key_file": str(base / "lake.key")})})
    account = f"ACCT-{uuid.uuid4().hex[:16]}"  # found by a byte search wherever it leaked
    names = pseudonym.for_settings(settings)
    write_lake_reads(open_lake(settings), day_of(names.one(METER), DAY, 0.25), offset=0)
    (base / "registry.csv").write_text(f"meter_point,gsp_group,supplier,profile_class,ssc,effective_from\n"
                                       f"{METER},_C,SUPA,1,0393,2024-01-01\n")
    registry_job.run(settings, base / "registry.csv")
    (base / "tariffs.toml").write_text(TARIFF)
    inputs.load_tariffs(settings, [base / "tariffs.toml"])
    (base / "accounts.csv").write_text(f"account,meter_point,tariff,effective_from\n"
                                       f"{account},{METER},flat-20,2024-01-01\n")
    inputs.load_accounts(settings, base / "accounts.csv")
    clean.run(settings, [DAY], spark=spark)
    answers = [bill.run(settings, DAY, DAY + timedelta(days=1), spark=spark),
               bill.run(settings, DAY, DAY + timedelta(days=1), account=account, spark=spark)]
    return settings, account, names.one(account), answers


def _files_naming(root: Path, text: str) -> list[str]:
    """The files under ``root`` whose path or bytes contain ``text``."""
    needle = text.encode()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and (needle in str(p).encode() or needle in p.read_bytes()))


def test_the_answer_names_the_account_by_its_clear_id(billed):
    _, account, _, answers = billed
    assert [[b["account"] for b in a["bills"]] for a in answers] == [[account], [account]]
    assert [a["status"] for a in answers] == ["billed", "billed"]


def test_the_lakes_billing_files_and_accounts_table_hold_no_clear_account_id(billed):
    settings, account, lake_name, _ = billed
    lake = Path(settings.paths.lake)
    assert _files_naming(lake, account) == []
    # the same search finds the pseudonym in every table that names the account (and the --account run's path)
    found = _files_naming(lake, lake_name)
    for table in ("accounts/", "billing/bills/", "billing/bill_lines/"):
        assert any(f.startswith(table) and f.endswith(".parquet") for f in found), (table, found)
    assert any(f"account={lake_name}" in f for f in found)


def test_the_clear_ids_live_outside_the_lake(billed):
    settings, account, lake_name, _ = billed
    kept = inputs.identifiers_path(settings)
    assert not str(kept).startswith(str(settings.paths.lake))
    assert kept.stat().st_mode & 0o777 == 0o600
    assert inputs.account_ids(settings, [lake_name]) == {lake_name: account}


def test_erasing_the_meter_removes_its_bills_and_account_rows(billed):  # last: it changes the lake
    from jobs.privacy import erase_meter

    settings, _, lake_name, _ = billed
    lake = open_lake(settings)
    meter = pseudonym.for_settings(settings).one(METER)
    removed = {r["output"].split("/")[0] for r in erase_meter(lake, meter)}
    assert {"accounts", "billing"} <= removed
    assert inputs.read_accounts(lake) == []
    assert _files_naming(Path(settings.paths.lake) / "billing", meter) == []
