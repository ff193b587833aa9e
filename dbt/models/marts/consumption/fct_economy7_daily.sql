-- The Economy 7 split per household and day: energy on the night register (NT) and the day register (DY), for
-- meters whose registration in force has an Economy 7 standard settlement configuration (seed
-- standard_settlement_configurations, tariff_kind 'economy7'). Grain: one row per (settlement_date, meter_point).
with half_hours as (
    select * from {{ ref('int_meter_half_hours') }}
),

economy7 as (
    select registrations.settlement_date, registrations.meter_point, registrations.ssc
    from {{ ref('int_registrations_daily') }} as registrations
    inner join {{ ref('standard_settlement_configurations') }} as sscs on sscs.ssc = registrations.ssc
    where sscs.tariff_kind = 'economy7'
)

select
    half_hours.settlement_date,
    half_hours.meter_point,
    economy7.ssc,
    sum(half_hours.night_register_kwh) as night_kwh,
    sum(half_hours.day_register_kwh) as day_kwh,
    sum(half_hours.consumption_kwh) as consumption_kwh,
    case when sum(half_hours.consumption_kwh) > 0
         then sum(half_hours.night_register_kwh) / sum(half_hours.consumption_kwh) end as night_share
from half_hours
inner join economy7
    on economy7.settlement_date = half_hours.settlement_date and economy7.meter_point = half_hours.meter_point
group by half_hours.settlement_date, half_hours.meter_point, economy7.ssc
