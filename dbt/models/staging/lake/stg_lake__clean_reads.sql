-- The clean job's reads: live versions with flags, and estimated half-hours. Grain: as the source.
with source as (
    select * from {{ lake_source('clean_reads') }}
),

renamed as (
    select
        meter_point,
        meter_serial,
        fuel,
        register_id,
        read_kind,
        interval_start_utc,
        cast(settlement_date as date) as settlement_date,
        cast(settlement_period as int) as settlement_period,
        value,
        unit,
        quality,
        source_version,
        versions,
        is_quarantined,
        is_estimated,
        estimation_method
    from source
)

select * from renamed
