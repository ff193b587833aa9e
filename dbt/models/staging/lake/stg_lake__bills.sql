-- The bill job's bills (docs/jobs.md, "Billing"), money in pence. Grain: (run_from, run_to, run_account, account,
-- meter_point, bill_from).
with source as (
    select * from {{ lake_source('bills') }}
),

renamed as (
    select
        account,
        meter_point,
        tariff,
        kind as tariff_kind,
        ssc,
        cast(bill_from as date) as bill_from,
        cast(bill_to as date) as bill_to,
        cast(days as int) as days,
        status,
        energy_kwh,
        estimated_kwh,
        cast(energy_p as decimal(18, 2)) as energy_p,
        cast(standing_p_per_day as decimal(18, 6)) as standing_p_per_day,
        cast(standing_p as decimal(18, 2)) as standing_p,
        cast(net_p as decimal(18, 2)) as net_p,
        cast(vat_rate as decimal(6, 4)) as vat_rate,
        cast(vat_p as decimal(18, 2)) as vat_p,
        cast(total_p as decimal(18, 2)) as total_p,
        cast(unpriced_periods as int) as unpriced_periods,
        cast(run_from as date) as run_from,
        cast(run_to as date) as run_to,
        run_account
    from source
)

select * from renamed
