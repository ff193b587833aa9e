-- Each household's typical day in a month: mean kWh per UK clock half-hour, weekdays and weekends apart (the
-- input of load-profile clustering). On the autumn clock change the repeated hour's two half-hours add up in
-- their clock slot; on the spring one the skipped slots have no day. Grain: one row per (month_start,
-- meter_point, day_type, clock_slot).
with half_hours as (
    select * from {{ ref('int_meter_half_hours') }}
),

days as (
    select settlement_date, day_type from {{ ref('int_settlement_days') }}
),

per_day as (
    select half_hours.settlement_date, half_hours.meter_point, half_hours.clock_slot, days.day_type,
           sum(half_hours.consumption_kwh) as kwh
    from half_hours
    inner join days on days.settlement_date = half_hours.settlement_date
    group by half_hours.settlement_date, half_hours.meter_point, half_hours.clock_slot, days.day_type
)

select
    {{ month_start('settlement_date') }} as month_start,
    meter_point,
    day_type,
    clock_slot,
    count(*) as days,
    avg(kwh) as mean_kwh
from per_day
group by {{ month_start('settlement_date') }}, meter_point, day_type, clock_slot
