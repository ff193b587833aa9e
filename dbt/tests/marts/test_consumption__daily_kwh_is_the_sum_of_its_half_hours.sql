-- Invariant: a meter-day's kWh is the sum of its half-hours, and its periods read their count.
with half_hours as (
    select settlement_date, meter_point, sum(consumption_kwh) as kwh, count(*) as periods
    from {{ ref('int_meter_half_hours') }}
    group by settlement_date, meter_point
)

select daily.settlement_date, daily.meter_point, daily.consumption_kwh, half_hours.kwh
from {{ ref('fct_daily_consumption') }} as daily
full outer join half_hours
    on half_hours.settlement_date = daily.settlement_date and half_hours.meter_point = daily.meter_point
where half_hours.kwh is null or daily.consumption_kwh is null
   or abs(daily.consumption_kwh - half_hours.kwh) > 1e-6 or daily.periods_read <> half_hours.periods
