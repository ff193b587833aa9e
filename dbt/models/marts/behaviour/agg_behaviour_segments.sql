-- Behaviour segments per month, for dashboards: how many households are in each segment and how they use
-- electricity on average. Cohorts of fewer than var('min_cohort') households are suppressed (left out), so no
-- row describes a handful of homes.
-- Grain: one row per (month_start, segment) with at least min_cohort meters.
with behaviour as (
    select * from {{ ref('fct_meter_behaviour_monthly') }}
),

segments as (
    select
        month_start,
        segment,
        count(*) as meters,
        sum(consumption_kwh) as consumption_kwh,
        avg(consumption_kwh) as mean_consumption_kwh,
        avg(peak_share) as mean_peak_share,
        avg(night_share) as mean_night_share,
        avg(baseload_kw) as mean_baseload_kw
    from behaviour
    group by month_start, segment
)

select * from segments
where meters >= {{ var('min_cohort') }}
