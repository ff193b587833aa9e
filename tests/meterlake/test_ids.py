"""MPAN core check digits and MPRN / LCL shapes, against published examples.

Valid MPAN cores: the 11 cores of the public D0010 sample flow (nitishlobo/kraken-energy,
data/DTC5259515123502080915D0010.uff) and the example core of the ``mpan`` library's README (limejump/mpan).
"""
from __future__ import annotations

import pytest

from meterlake import ids

PUBLISHED_VALID_CORES = [
    "1200023305967", "1900001059816", "1200033197420", "1200031039874", "1591055549625", "2200031930792",
    "1200022664056", "1900005260419", "1013044353630", "1900005281720", "2000055433806", "1312345678907",
]


@pytest.mark.parametrize("core", PUBLISHED_VALID_CORES)
def test_published_mpan_cores_are_valid(core):
    assert ids.mpan_problem(core) is None
    assert ids.is_valid_mpan_core(core)


@pytest.mark.parametrize("wrong", [
    pytest.param("1200023305968", id="last digit +1"),
    pytest.param("1312345678901", id="last digit changed"),
    pytest.param("1200023309567", id="two digits swapped"),
    pytest.param("2200031930782", id="digit 12 changed"),
])
def test_a_changed_core_fails_its_check_digit(wrong):
    problem = ids.mpan_problem(wrong)
    assert problem is not None and problem.reason == "bad_mpan_check_digit"


def test_the_detail_names_the_expected_digit():
    assert ids.mpan_problem("1200023305968").detail == (
        "MPAN core 1200023305968 has check digit 8, expected 7")


@pytest.mark.parametrize("first12, digit", [
    ("120002330596", 7), ("220003193079", 2), ("131234567890", 7), ("101304435363", 0),
])
def test_check_digit_of_published_cores(first12, digit):
    assert ids.mpan_check_digit(first12) == digit


def test_make_mpan_core_builds_a_valid_core():
    assert ids.make_mpan_core(12, 2330596) == "1200023305967"


@pytest.mark.parametrize("value", ["120002330596", "12000233059671", "12000233O5967", ""])
def test_malformed_mpan_is_a_bad_meter_point(value):
    assert ids.mpan_problem(value).reason == "bad_meter_point"


@pytest.mark.parametrize("value, valid", [
    ("123456", True), ("1234567890", True), ("7434918404", True),
    ("12345", False), ("12345678901", False), ("0123456", False), ("12345A", False),
])
def test_mprn_shape(value, valid):
    assert ids.is_valid_mprn(value) is valid


@pytest.mark.parametrize("meter_point, fuel, reason", [
    ("1200023305967", "electricity", None),
    ("1200023305968", "electricity", "bad_mpan_check_digit"),
    ("7434918404", "gas", None),
    ("MAC000002", None, "bad_meter_point"),
    ("", None, "missing_value"),
])
def test_meter_point_problem(meter_point, fuel, reason):
    got_fuel, problem = ids.meter_point_problem(meter_point)
    assert got_fuel == fuel
    assert (problem.reason if problem else None) == reason


def test_lcl_household_ids():
    assert ids.lcl_problem("MAC000002") is None
    assert ids.lcl_problem("MAC00002").reason == "bad_meter_point"
