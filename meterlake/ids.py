"""Meter point identifiers: MPAN cores (electricity), MPRNs (gas) and the public LCL household ids.

MPAN core
    13 digits: a 2-digit distributor id, a 10-digit unique number and a check digit. The check digit is
    the standard one: multiply the first 12 digits by the primes 3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41,
    43 (11 is left out), add, take the sum mod 11 and then mod 10.
MPRN
    The gas meter point reference number: 6 to 10 digits, not starting with 0. Its check digits
    (Xoserve's) are not published in a form we could verify, so an MPRN is validated by shape only.
LCL household id
    ``MAC`` and 6 digits, the id of a household in the Low Carbon London "Smart meters in London" data set.

A meter point's fuel follows from its shape: 13 digits is an MPAN core (electricity), 6-10 digits an MPRN
(gas).

Every check returns ``None`` when the id is fine, or a :class:`Problem` whose ``reason`` is a stable
quarantine code (see :data:`meterlake.schema.QUARANTINE_REASONS`) and whose ``detail`` is for people.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

MPAN_PRIMES = (3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43)

# Distributor id (first two digits of an MPAN core) -> GSP group, for the 14 licensed distribution areas.
DISTRIBUTOR_GSP_GROUP = {
    "10": "_A", "11": "_B", "12": "_C", "13": "_D", "14": "_E", "15": "_F", "16": "_G",
    "17": "_P", "18": "_N", "19": "_J", "20": "_H", "21": "_K", "22": "_L", "23": "_M",
}

_MPAN_RE = re.compile(r"\d{13}")
_MPRN_RE = re.compile(r"[1-9]\d{5,9}")
_LCL_RE = re.compile(r"MAC\d{6}")


class Problem(NamedTuple):
    reason: str
    detail: str


def mpan_check_digit(first12: str) -> int:
    """The check digit of an MPAN core whose first 12 digits are ``first12``."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"expected the first 12 digits of an MPAN core, got {first12!r}")
    return sum(int(d) * p for d, p in zip(first12, MPAN_PRIMES, strict=True)) % 11 % 10


def make_mpan_core(distributor: int | str, unique: int) -> str:
    """A valid MPAN core from a distributor id (10-99) and a unique number (0 to 10**10 - 1)."""
    first12 = f"{int(distributor):02d}{int(unique):010d}"
    if len(first12) != 12:
        raise ValueError(f"distributor {distributor!r} / unique number {unique!r} out of range")
    return first12 + str(mpan_check_digit(first12))


@lru_cache(maxsize=65_536)
def mpan_problem(core: str) -> Problem | None:
    """Why ``core`` is not a valid MPAN core, or None."""
    if not _MPAN_RE.fullmatch(core):
        return Problem("bad_meter_point", f"MPAN core {core!r} is not 13 digits")
    expected = mpan_check_digit(core[:12])
    if int(core[12]) != expected:
        detail = f"MPAN core {core} has check digit {core[12]}, expected {expected}"
        return Problem("bad_mpan_check_digit", detail)
    return None


def is_valid_mpan_core(core: str) -> bool:
    return mpan_problem(core) is None


def mprn_problem(mprn: str) -> Problem | None:
    """Why ``mprn`` is not a well-formed MPRN (6-10 digits, no leading 0), or None."""
    if not _MPRN_RE.fullmatch(mprn):
        return Problem("bad_meter_point", f"MPRN {mprn!r} is not 6-10 digits without a leading 0")
    return None


def is_valid_mprn(mprn: str) -> bool:
    return mprn_problem(mprn) is None


def lcl_problem(household: str) -> Problem | None:
    if not _LCL_RE.fullmatch(household):
        return Problem("bad_meter_point", f"LCL household id {household!r} is not MAC and 6 digits")
    return None


def fuel_of(meter_point: str) -> str | None:
    """``electricity`` for a 13-digit id, ``gas`` for a 6-10 digit one, None for anything else."""
    if meter_point.isdigit():
        if len(meter_point) == 13:
            return "electricity"
        if 6 <= len(meter_point) <= 10:
            return "gas"
    return None


def meter_point_problem(meter_point: str) -> tuple[str | None, Problem | None]:
    """The fuel of an MPAN core or MPRN and why it is invalid (or None)."""
    if not meter_point:
        return None, Problem("missing_value", "no meter point")
    fuel = fuel_of(meter_point)
    if fuel == "electricity":
        return fuel, mpan_problem(meter_point)
    if fuel == "gas":
        return fuel, mprn_problem(meter_point)
    detail = f"{meter_point!r} is neither an MPAN core (13 digits) nor an MPRN (6-10 digits)"
    return None, Problem("bad_meter_point", detail)
