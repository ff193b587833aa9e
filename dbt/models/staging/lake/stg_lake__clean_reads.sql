-- The clean job's reads: live versions with flags, and estimated half-hours. Grain: as the source.
with source as (
    select * from {{ lake_source('clean_reads') }}
),

renamed as (
    select
        {{ read_model_columns() }},
        source_version,
        versions,
        is_quarantined,
        is_estimated,
        estimation_method
    from source
)

select * from renamed
