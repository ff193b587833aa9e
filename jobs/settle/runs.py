"""The settlement runs and their cut-offs now live in :mod:`meterlake.settlement_runs` (the lake's compaction needs
them too, and streaming/ does not depend on jobs/). This name is kept so ``from jobs.settle import runs`` works."""
from meterlake.settlement_runs import (  # noqa: F401
    RUNS,
    SF_WORKING_DAYS,
    add_months,
    add_working_days,
    check_run,
    cutoff_day,
    cutoff_instant,
    cutoff_version,
)
