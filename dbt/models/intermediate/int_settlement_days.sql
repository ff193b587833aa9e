-- Every settlement date of the lake with its number of periods (46, 48 or 50; the seed copies
-- meterlake.calendar's clock changes), ISO weekday and season. Grain: one row per settlement_date.
with dates as (
    select settlement_date from {{ ref('int_lake_date_fingerprints') }}
),

changes as (
    select * from {{ ref('clock_change_days') }}
)

select
    dates.settlement_date,
    coalesce(changes.periods_in_day, 48) as periods_in_day,
    {{ iso_weekday('dates.settlement_date') }} as iso_weekday,
    case when {{ iso_weekday('dates.settlement_date') }} >= 6 then 'weekend' else 'weekday' end as day_type,
    {{ season('dates.settlement_date') }} as season
from dates
left join changes on changes.settlement_date = dates.settlement_date
