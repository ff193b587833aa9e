-- Changes between two settlement runs. Grain: (settlement_date, from_run, to_run, meter_point,
-- settlement_period).
with source as (
    select * from {{ lake_source('settlement_diff') }}
),

renamed as (
    select
        cast(settlement_date as date) as settlement_date,
        cast(settlement_period as int) as settlement_period,
        meter_point,
        from_run,
        to_run,
        reason,
        from_kwh,
        to_kwh,
        delta_kwh,
        from_method,
        to_method,
        from_source_version,
        to_source_version
    from source
)

select * from renamed
