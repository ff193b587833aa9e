-- Invariant: every settlement run of a date has one row per period of the calendar's day, no more, no less.
select runs.settlement_date, runs.run, runs.periods, coalesce(changes.periods_in_day, 48) as calendar_periods
from {{ ref('fct_settlement_runs') }} as runs
left join {{ ref('clock_change_days') }} as changes on changes.settlement_date = runs.settlement_date
where runs.periods <> coalesce(changes.periods_in_day, 48)
