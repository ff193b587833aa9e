-- Every row of the lake's reads (all versions and copies), typed. Grain: as the source.
with source as (
    select * from {{ lake_source('reads') }}
),

renamed as (
    select
        {{ read_model_columns(provenance=true) }}
    from source
)

select * from renamed
