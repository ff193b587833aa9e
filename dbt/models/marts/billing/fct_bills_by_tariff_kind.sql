-- Bills by tariff kind and the month their period starts in: what flat, time-of-use and dynamic customers were
-- billed. Grain: one row per (month_start, tariff_kind).
with bills as (
    select * from {{ ref('fct_bills') }}
)

select
    {{ month_start('bill_from') }} as month_start,
    tariff_kind,
    count(distinct account) as accounts,
    count(*) as bills,
    sum(case when status = 'incomplete' then 1 else 0 end) as incomplete_bills,
    sum(days) as days_billed,
    sum(energy_kwh) as energy_kwh,
    sum(energy_p) as energy_p,
    sum(total_p) as total_p,
    case when sum(energy_kwh) > 0 then cast(sum(energy_p) as double) / sum(energy_kwh) end as mean_unit_p
from bills
group by {{ month_start('bill_from') }}, tariff_kind
