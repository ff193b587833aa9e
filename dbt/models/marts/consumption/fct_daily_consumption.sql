{{ config(**date_incremental_config()) }}
-- Electricity consumption per meter and UK settlement date, from the latest version of each half-hourly read.
-- Incremental: only the settlement dates whose lake files changed since the last build are rebuilt.
-- Grain: one row per (settlement_date, meter_point).
with half_hours as (
    select * from {{ ref('int_meter_half_hours') }}
    where {{ changed_settlement_dates('settlement_date') }}
),

fingerprints as (
    select * from {{ ref('int_lake_date_fingerprints') }}
),

daily as (
    select
        settlement_date,
        meter_point,
        max(periods_in_day) as periods_in_day,
        count(*) as periods_read,
        sum(case when is_estimated then 1 else 0 end) as estimated_periods,
        sum(consumption_kwh) as consumption_kwh,
        sum(estimated_kwh) as estimated_kwh,
        max(consumption_kwh) as max_half_hour_kwh,
        min(consumption_kwh) as min_half_hour_kwh
    from half_hours
    group by settlement_date, meter_point
)

select
    daily.meter_point,
    daily.periods_in_day,
    daily.periods_read,
    daily.periods_read = daily.periods_in_day as is_complete,
    daily.estimated_periods,
    daily.consumption_kwh,
    daily.estimated_kwh,
    daily.max_half_hour_kwh,
    daily.min_half_hour_kwh,
    fingerprints.lake_fingerprint,
    '{{ invocation_id }}' as dbt_invocation_id,
    daily.settlement_date
from daily
inner join fingerprints on fingerprints.settlement_date = daily.settlement_date
