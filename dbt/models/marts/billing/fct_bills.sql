-- Bills per account, meter point and bill period, with the tariff and its kind, from the bill job (docs/jobs.md,
-- "Billing"). Where bill runs overlap, the bill of the run that ended last (then started last; a one-account run
-- before an all-accounts one) stands for its (account, meter_point, bill_from).
-- Grain: one row per (account, meter_point, bill_from).
with bills as (
    select * from {{ ref('stg_lake__bills') }}
),

ranked as (
    select
        bills.*,
        row_number() over (
            partition by account, meter_point, bill_from
            order by run_to desc, run_from desc, run_account asc nulls last
        ) as run_rank
    from bills
)

select
    account,
    meter_point,
    bill_from,
    bill_to,
    days,
    tariff,
    tariff_kind,
    status,
    energy_kwh,
    estimated_kwh,
    energy_p,
    standing_p,
    net_p,
    vat_p,
    total_p,
    case when energy_kwh > 0 then cast(energy_p as double) / energy_kwh end as mean_unit_p,
    unpriced_periods,
    run_from,
    run_to
from ranked
where run_rank = 1
