-- Electricity energy per meter and half-hour: the latest version of each interval read in kWh, summed over
-- the meter's registers (an Economy 7 meter reads DY or NT in a half-hour), withdrawn reads left out, placed on
-- the UK clock (clock_slot) with the calendar's periods of the day.
-- Grain: one row per (settlement_date, meter_point, settlement_period).
with reads as (
    select * from {{ ref('int_reads_deduplicated') }}
    where read_kind = 'interval' and unit = 'kWh' and quality <> 'withdrawn'
),

days as (
    select * from {{ ref('int_settlement_days') }}
)

select
    reads.settlement_date,
    reads.meter_point,
    reads.settlement_period,
    days.periods_in_day,
    {{ clock_slot('reads.settlement_period', 'days.periods_in_day') }} as clock_slot,
    sum(reads.value) as consumption_kwh,
    sum(case when reads.quality = 'estimated' then reads.value else 0 end) as estimated_kwh,
    sum(case when reads.register_id = 'NT' then reads.value else 0 end) as night_register_kwh,
    sum(case when reads.register_id = 'DY' then reads.value else 0 end) as day_register_kwh,
    max(case when reads.quality = 'estimated' then 1 else 0 end) = 1 as is_estimated
from reads
inner join days on days.settlement_date = reads.settlement_date
group by reads.settlement_date, reads.meter_point, reads.settlement_period, days.periods_in_day
