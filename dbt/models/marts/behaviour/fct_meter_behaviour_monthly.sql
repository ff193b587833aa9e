-- How each household uses electricity in a month: its evening-peak and night shares, its baseload (the typical
-- night minimum) and a behaviour segment. Peak and night are UK clock half-hours (vars peak_first_slot ..
-- peak_last_slot, 16:00-19:00; night 00:00-07:00), so clock-change days count the hours the household lived.
-- Grain: one row per (month_start, meter_point).
with half_hours as (
    select * from {{ ref('int_meter_half_hours') }}
),

nightly_minimum as (
    -- the lowest half-hour of each night (00:00 to the end of clock slot baseload_last_slot)
    select settlement_date, meter_point, min(consumption_kwh) as min_kwh
    from half_hours
    where clock_slot <= {{ var('baseload_last_slot') }}
    group by settlement_date, meter_point
),

baseload as (
    select
        {{ month_start('settlement_date') }} as month_start,
        meter_point,
        -- a half-hour's kWh times 2 is the mean kW over it
        median(min_kwh) * 2 as baseload_kw
    from nightly_minimum
    group by {{ month_start('settlement_date') }}, meter_point
),

monthly as (
    select
        {{ month_start('settlement_date') }} as month_start,
        meter_point,
        count(distinct settlement_date) as days_read,
        sum(consumption_kwh) as consumption_kwh,
        sum(case when clock_slot between {{ var('peak_first_slot') }} and {{ var('peak_last_slot') }}
                 then consumption_kwh else 0 end) as peak_kwh,
        sum(case when clock_slot <= 14 then consumption_kwh else 0 end) as night_kwh,
        cast(count(*) as double) / 2 as hours_read
    from half_hours
    group by {{ month_start('settlement_date') }}, meter_point
),

shares as (
    select
        monthly.*,
        baseload.baseload_kw,
        case when monthly.consumption_kwh > 0 then monthly.peak_kwh / monthly.consumption_kwh end as peak_share,
        case when monthly.consumption_kwh > 0 then monthly.night_kwh / monthly.consumption_kwh end as night_share,
        case when monthly.consumption_kwh > 0
             then baseload.baseload_kw * monthly.hours_read / monthly.consumption_kwh end as baseload_share
    from monthly
    left join baseload on baseload.month_start = monthly.month_start and baseload.meter_point = monthly.meter_point
)

select
    month_start,
    meter_point,
    days_read,
    consumption_kwh,
    peak_kwh,
    consumption_kwh - peak_kwh as off_peak_kwh,
    peak_share,
    night_kwh,
    night_share,
    baseload_kw,
    baseload_share,
    case
        when consumption_kwh <= 0 then 'no_consumption'
        when night_share >= {{ var('night_share_min') }} then 'night_shifter'
        when peak_share >= {{ var('peak_share_min') }} then 'evening_peaker'
        when baseload_share >= {{ var('baseload_share_min') }} then 'high_baseload'
        else 'daytime_steady'
    end as segment
from shares
