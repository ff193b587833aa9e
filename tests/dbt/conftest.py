"""The dbt tests' lake: a generated portfolio with the jobs' outputs (tests/dbt/portfolio_lake.py), and its DuckDB
warehouse, once per session, shared by the dbt project's tests and the notebooks'."""
from __future__ import annotations

import pytest

from tests.dbt import portfolio_lake


@pytest.fixture(scope="session")
def dbt_lake(spark, tmp_path_factory):
    return portfolio_lake.build(tmp_path_factory.mktemp("dbt-lake"), spark)


@pytest.fixture(scope="session")
def dbt_warehouse(dbt_lake):
    """The lake with its warehouse built and published by `meterlake models build` (DuckDB, every test)."""
    from tests.dbt.test_dbt_project import cli_build

    answer = cli_build(dbt_lake.settings)
    return portfolio_lake.Built(dbt_lake.settings, answer)
