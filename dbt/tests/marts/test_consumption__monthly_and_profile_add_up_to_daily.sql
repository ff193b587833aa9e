-- Invariant: each settlement month's kWh in fct_monthly_consumption, and each date's kWh over all periods of
-- fct_load_profile, equal the daily mart's.
with daily as (
    select settlement_date, {{ month_start('settlement_date') }} as month_start, consumption_kwh
    from {{ ref('fct_daily_consumption') }}
),

by_month as (
    select month_start, sum(consumption_kwh) as kwh from daily group by month_start
),

monthly as (
    select month_start, sum(consumption_kwh) as kwh from {{ ref('fct_monthly_consumption') }} group by month_start
),

by_date as (
    select settlement_date, sum(consumption_kwh) as kwh from daily group by settlement_date
),

profile as (
    select settlement_date, sum(consumption_kwh) as kwh from {{ ref('fct_load_profile') }} group by settlement_date
)

select 'monthly' as mart, cast(by_month.month_start as string) as key_value, by_month.kwh, monthly.kwh as mart_kwh
from by_month full outer join monthly on monthly.month_start = by_month.month_start
where monthly.kwh is null or by_month.kwh is null or abs(monthly.kwh - by_month.kwh) > 1e-6
union all
select 'load_profile', cast(by_date.settlement_date as string), by_date.kwh, profile.kwh
from by_date full outer join profile on profile.settlement_date = by_date.settlement_date
where profile.kwh is null or by_date.kwh is null or abs(profile.kwh - by_date.kwh) > 1e-6
