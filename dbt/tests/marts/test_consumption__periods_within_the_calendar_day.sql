-- Invariant: a meter-day never has more half-hours read than its settlement date has periods (46, 48 or 50 by
-- the calendar), and the date's periods are the calendar's: the seed's clock changes or 48.
select daily.settlement_date, daily.meter_point, daily.periods_read, daily.periods_in_day
from {{ ref('fct_daily_consumption') }} as daily
left join {{ ref('clock_change_days') }} as changes on changes.settlement_date = daily.settlement_date
where daily.periods_read > daily.periods_in_day
   or daily.periods_in_day <> coalesce(changes.periods_in_day, 48)
