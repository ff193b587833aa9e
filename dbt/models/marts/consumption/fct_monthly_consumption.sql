-- Electricity consumption per meter and calendar month of settlement dates.
-- Grain: one row per (month_start, meter_point).
with daily as (
    select * from {{ ref('fct_daily_consumption') }}
)

select
    {{ month_start('settlement_date') }} as month_start,
    meter_point,
    count(*) as days_read,
    sum(case when is_complete then 1 else 0 end) as complete_days,
    sum(periods_read) as periods_read,
    sum(estimated_periods) as estimated_periods,
    sum(consumption_kwh) as consumption_kwh,
    sum(estimated_kwh) as estimated_kwh
from daily
group by {{ month_start('settlement_date') }}, meter_point
