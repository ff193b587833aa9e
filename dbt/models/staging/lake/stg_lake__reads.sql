-- Every row of the lake's reads (all versions and copies), typed. Grain: as the source.
with source as (
    select * from {{ lake_source('reads') }}
),

renamed as (
    select
        {{ read_model_columns() }},
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
