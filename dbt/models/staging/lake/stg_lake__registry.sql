-- The meter registry. Grain: (meter_point, effective_from).
with source as (
    select * from {{ lake_source('registry') }}
),

renamed as (
    select
        meter_point,
        fuel,
        gsp_group,
        supplier,
        profile_class,
        ssc,
        llfc,
        measurement_class,
        cast(effective_from as date) as effective_from,
        cast(effective_to as date) as effective_to
    from source
)

select * from renamed
