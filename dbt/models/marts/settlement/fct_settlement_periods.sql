-- Settlement totals per run and period, and the change from the date's previous run (in run order SF, R1, R2,
-- R3, RF, DF; the seed settlement_runs copies meterlake.settlement_runs). Grain: one row per
-- (settlement_date, run, settlement_period).
with settlement as (
    select * from {{ ref('stg_lake__settlement') }}
),

runs as (
    select * from {{ ref('settlement_runs') }}
),

totals as (
    select
        settlement.settlement_date,
        settlement.run,
        settlement.settlement_period,
        max(runs.run_order) as run_order,
        sum(settlement.consumption_kwh) as consumption_kwh,
        sum(settlement.actual_kwh) as actual_kwh,
        sum(settlement.estimated_kwh) as estimated_kwh,
        sum(settlement.loss_adjusted_kwh) as loss_adjusted_kwh,
        sum(settlement.meters) as meters,
        sum(settlement.estimated_meters) as estimated_meters,
        sum(settlement.unsettled_meters) as unsettled_meters,
        max(settlement.cutoff_utc) as cutoff_utc
    from settlement
    inner join runs on runs.run = settlement.run
    group by settlement.settlement_date, settlement.run, settlement.settlement_period
),

with_previous as (
    select
        totals.*,
        lag(run) over (partition by settlement_date, settlement_period order by run_order) as previous_run,
        lag(consumption_kwh) over (partition by settlement_date, settlement_period order by run_order)
            as previous_consumption_kwh
    from totals
)

select
    settlement_date,
    run,
    settlement_period,
    run_order,
    consumption_kwh,
    actual_kwh,
    estimated_kwh,
    loss_adjusted_kwh,
    meters,
    estimated_meters,
    unsettled_meters,
    cutoff_utc,
    previous_run,
    previous_consumption_kwh,
    consumption_kwh - previous_consumption_kwh as change_kwh
from with_previous
