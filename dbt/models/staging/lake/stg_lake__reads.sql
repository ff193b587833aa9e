-- Every row of the lake's reads (all versions and copies), typed. Grain: as the source.
with source as (
    select * from {{ lake_source('reads') }}
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
        source_file,
        source_line,
        device_id,
        source_version,
        kafka_topic,
        kafka_partition,
        kafka_offset
    from source
)

select * from renamed
