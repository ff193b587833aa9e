{{ config(**date_incremental_config()) }}
-- The load profile: energy of all meters per settlement period, with the period's UK clock half-hour, the
-- day's weekday and season, by profile class (the registration in force, 'unregistered' without one), for
-- profiles by period, weekday and season. Incremental like fct_daily_consumption.
-- Grain: one row per (settlement_date, settlement_period, profile_class).
with half_hours as (
    select * from {{ ref('int_meter_half_hours') }}
    where {{ changed_settlement_dates('settlement_date') }}
),

registrations as (
    select settlement_date, meter_point, profile_class from {{ ref('int_registrations_daily') }}
),

days as (
    select * from {{ ref('int_settlement_days') }}
),

fingerprints as (
    select * from {{ ref('int_lake_date_fingerprints') }}
),

profiled as (
    select
        half_hours.settlement_date,
        half_hours.settlement_period,
        coalesce(registrations.profile_class, 'unregistered') as profile_class,
        max(half_hours.clock_slot) as clock_slot,
        max(half_hours.periods_in_day) as periods_in_day,
        count(*) as meters,
        sum(half_hours.consumption_kwh) as consumption_kwh
    from half_hours
    left join registrations
        on registrations.settlement_date = half_hours.settlement_date
        and registrations.meter_point = half_hours.meter_point
    group by half_hours.settlement_date, half_hours.settlement_period,
             coalesce(registrations.profile_class, 'unregistered')
)

select
    profiled.settlement_period,
    profiled.profile_class,
    profiled.clock_slot,
    profiled.periods_in_day,
    days.iso_weekday,
    days.day_type,
    days.season,
    profiled.meters,
    profiled.consumption_kwh,
    profiled.consumption_kwh / profiled.meters as mean_kwh_per_meter,
    fingerprints.lake_fingerprint,
    '{{ invocation_id }}' as dbt_invocation_id,
    profiled.settlement_date
from profiled
inner join days on days.settlement_date = profiled.settlement_date
inner join fingerprints on fingerprints.settlement_date = profiled.settlement_date
