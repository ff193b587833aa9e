-- Settlement totals per run of a date and the change from the previous run, with the reasons the run diffs
-- give for it. Grain: one row per (settlement_date, run).
with periods as (
    select * from {{ ref('fct_settlement_periods') }}
),

diffs as (
    select
        settlement_date,
        to_run,
        from_run,
        count(*) as changed_meter_periods,
        sum(case when reason = 'late_read' then 1 else 0 end) as late_read_changes,
        sum(case when reason = 'correction' then 1 else 0 end) as correction_changes,
        sum(delta_kwh) as diff_delta_kwh
    from {{ ref('stg_lake__settlement_diff') }}
    group by settlement_date, to_run, from_run
),

runs as (
    select
        settlement_date,
        run,
        max(run_order) as run_order,
        max(previous_run) as previous_run,
        count(*) as periods,
        sum(consumption_kwh) as consumption_kwh,
        sum(estimated_kwh) as estimated_kwh,
        sum(previous_consumption_kwh) as previous_consumption_kwh,
        max(cutoff_utc) as cutoff_utc
    from periods
    group by settlement_date, run
)

select
    runs.settlement_date,
    runs.run,
    runs.run_order,
    runs.periods,
    runs.consumption_kwh,
    runs.estimated_kwh,
    runs.cutoff_utc,
    runs.previous_run,
    runs.consumption_kwh - runs.previous_consumption_kwh as change_kwh,
    diffs.changed_meter_periods,
    diffs.late_read_changes,
    diffs.correction_changes
from runs
left join diffs
    on diffs.settlement_date = runs.settlement_date and diffs.to_run = runs.run
    and diffs.from_run = runs.previous_run
