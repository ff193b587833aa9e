"""Registrations for validating commands: the registry CSV (plus prepay_capable), the registration in force."""
from __future__ import annotations

from datetime import date

import pytest

from meterlake.errors import UsageError
from streaming.commands import registrations
from streaming.commands.model import Registration

CSV = """meter_point,gsp_group,supplier,profile_class,ssc,llfc,effective_from,effective_to,prepay_capable
2000012345670,_A,SUPA,1,0393,101,2024-01-01,2025-01-01,
2000012345670,_A,SUPA,2,0151,102,2025-01-01,,false
1234567890,_B,SUPB,,,,2024-01-01,,
2000099999996,_C,SUPC,,,,2024-01-01,,
"""


@pytest.fixture()
def lookup(tmp_path):
    path = tmp_path / "registrations.csv"
    path.write_text(CSV)
    return registrations.from_csv(path)


def test_the_registration_in_force_on_the_day_applies(lookup):
    assert lookup("2000012345670", date(2024, 12, 31)) == Registration(
        "2000012345670", "electricity", ssc="0393", profile_class="1", prepay_capable=True)
    assert lookup("2000012345670", date(2025, 1, 1)) == Registration(
        "2000012345670", "electricity", ssc="0151", profile_class="2", prepay_capable=False)


def test_before_its_first_registration_a_meter_point_is_unregistered(lookup):
    assert lookup("2000012345670", date(2023, 12, 31)) is None
    assert lookup("2000000000000", date(2025, 1, 1)) is None


def test_prepay_capability_without_a_column_says_domestic_and_gas(lookup):
    assert lookup("1234567890", date(2025, 1, 1)).prepay_capable  # gas
    assert not lookup("2000099999996", date(2025, 1, 1)).prepay_capable  # no profile class: half-hourly settled


def test_a_bad_line_names_the_file_line_and_field(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("meter_point,effective_from,prepay_capable\n2000012345670,2024-01-01,maybe\n")
    with pytest.raises(UsageError) as info:
        registrations.from_csv(path)
    assert info.value.details == {"path": str(path), "line": 2, "field": "prepay_capable"}


def test_the_lakes_registry_is_looked_up_by_pseudonym(tmp_path):
    """The registry as `meterlake registry load` writes it (pseudonymised meter points) validates commands."""
    from jobs.registry import job as registry_job
    from meterlake import config

    (tmp_path / "key").write_bytes(b"k" * 32)
    base = config.load(None)
    settings = base.model_copy(update={
        "paths": base.paths.model_copy(update={"lake": str(tmp_path / "lake")}),
        "lake": base.lake.model_copy(update={"pseudonym_key_file": str(tmp_path / "key")})})
    (tmp_path / "registry.csv").write_text(
        "meter_point,gsp_group,supplier,profile_class,ssc,llfc,effective_from\n"
        "2000012345670,_A,SUPA,2,0151,102,2024-01-01\n")
    registry_job.run(settings, tmp_path / "registry.csv")
    lookup = registrations.from_lake(settings)
    assert lookup("2000012345670", date(2024, 6, 1)) == Registration(
        "2000012345670", "electricity", ssc="0151", profile_class="2", prepay_capable=True)
    assert lookup("2000012345670", date(2023, 6, 1)) is None


def test_without_a_registry_in_the_lake_the_answer_says_how_to_load_one(tmp_path):
    from meterlake import config

    base = config.load(None)
    settings = base.model_copy(update={"paths": base.paths.model_copy(update={"lake": str(tmp_path / "lake")})})
    with pytest.raises(UsageError, match="registry load"):
        registrations.from_lake(settings)("2000012345670", date(2024, 6, 1))
