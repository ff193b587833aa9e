"""The registry CSV: parsing, refusal of bad lines, merging loads (pure Arrow; no Spark)."""
from __future__ import annotations

from datetime import date

import pytest

from jobs.registry import job
from meterlake.errors import UsageError

HEADER = "meter_point,gsp_group,supplier,profile_class,ssc,llfc,effective_from"


def test_the_generators_registry_parses():
    text = f"{HEADER}\n1574737843,_A,SUPB,,,,2024-10-21\n2205747378449,_L,SUPB,1,0393,101,2024-10-21\n"
    table, problems = job.parse(text, "registry.csv")
    assert problems == []
    assert table.to_pylist()[1] == {
        "meter_point": "2205747378449", "fuel": "electricity", "gsp_group": "_L", "supplier": "SUPB",
        "profile_class": "1", "ssc": "0393", "llfc": "101", "measurement_class": None,
        "effective_from": date(2024, 10, 21), "effective_to": None, "source_file": "registry.csv"}
    assert table.column("fuel").to_pylist() == ["gas", "electricity"]


def test_every_bad_field_is_reported_with_its_line():
    text = (f"{HEADER},effective_to\n"
            "2205747378449,_Q,SUPB,9,393,101,2024-10-21,2024-10-01\n"
            "bad,_A,,,,,21/10/2024,\n")
    table, problems = job.parse(text, "r.csv")
    assert table.num_rows == 0
    assert [(p["line"], p["field"]) for p in problems] == [
        (2, "gsp_group"), (2, "effective_to"), (2, "profile_class"), (2, "ssc"),
        (3, "meter_point"), (3, "supplier"), (3, "effective_from")]


def test_an_unknown_or_missing_column_is_refused():
    _, problems = job.parse("meter_point,gsp_grup,supplier,effective_from\n", "r.csv")
    assert problems == [{"line": 1, "field": None,
                         "problem": "header: missing ['gsp_group']; unknown ['gsp_grup']"}]


def _table(rows):
    text = HEADER + "\n" + "\n".join(rows) + "\n"
    table, problems = job.parse(text, "r.csv")
    assert problems == []
    return table


def test_a_load_replaces_rows_of_the_same_date_and_keeps_the_others():
    first = _table(["2205747378449,_L,SUPA,1,0393,101,2024-01-01", "1574737843,_A,SUPB,,,,2024-01-01"])
    second = _table(["2205747378449,_L,SUPC,1,0393,101,2024-01-01", "2205747378449,_L,SUPD,1,0393,101,2024-06-01"])
    merged, counts = job.transform(first, second)
    assert [(r["meter_point"], r["supplier"], r["effective_from"]) for r in merged.to_pylist()] == [
        ("1574737843", "SUPB", date(2024, 1, 1)),
        ("2205747378449", "SUPC", date(2024, 1, 1)), ("2205747378449", "SUPD", date(2024, 6, 1))]
    assert counts == {"rows": 3, "meter_points": 2, "added": 1, "replaced": 1, "kept": 1}
    replaced, counts = job.transform(first, second, replace=True)
    assert counts["rows"] == 2 and counts["kept"] == 0


def test_a_file_registering_a_meter_twice_on_one_date_is_refused():
    twice = _table(["2205747378449,_L,SUPA,1,0393,101,2024-01-01", "2205747378449,_L,SUPB,1,0393,101,2024-01-01"])
    with pytest.raises(UsageError, match="twice"):
        job.transform(job.SCHEMA.empty_table(), twice)


def test_loading_a_bad_file_loads_nothing(tmp_path):
    from meterlake import config

    bad = tmp_path / "registry.csv"
    bad.write_text(f"{HEADER}\n2205747378449,_Q,SUPA,1,0393,101,2024-01-01\n")
    settings = config.load(None)
    settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={"lake": str(tmp_path / "lake")})})
    with pytest.raises(UsageError) as caught:
        job.run(settings, bad)
    assert caught.value.details["problems"][0]["line"] == 2
    assert not (tmp_path / "lake" / job.PATH).exists()
