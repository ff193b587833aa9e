"""The tariffs a ``set_tariff`` command may name: billing's tariffs loaded into the lake (``meterlake tariffs
load``; the ``tariffs`` output of :mod:`meterlake.lake.outputs`), so a meter is never set to a tariff billing cannot
price. Read once per call; no tariffs loaded is an error that says how to load them.
"""
from __future__ import annotations

from meterlake.errors import UsageError


def from_lake(settings) -> set[str]:
    """The ids of the tariffs loaded into the lake."""
    import pyarrow.parquet as pq

    from meterlake.lake import files, outputs

    lake = files.open_lake(settings)
    found = outputs.view_files(lake, ["tariffs"])["tariffs"]
    if not found:
        raise UsageError(f"no tariffs in the lake {settings.lake_url}: a set_tariff command names one of billing's "
                         "tariffs; load them with `meterlake tariffs load FILE`", refusal="no_tariffs")
    return {t for f in found for t in pq.read_table(f, columns=["tariff"], filesystem=lake.fs)
            .column("tariff").to_pylist()}
