-- Settlement runs. Grain: (settlement_date, settlement_period, run, gsp_group, supplier, profile_class,
-- measurement_class).
with source as (
    select * from {{ lake_source('settlement') }}
),

renamed as (
    select
        cast(settlement_date as date) as settlement_date,
        cast(settlement_period as int) as settlement_period,
        run,
        gsp_group,
        supplier,
        profile_class,
        measurement_class,
        consumption_kwh,
        actual_kwh,
        estimated_kwh,
        loss_adjusted_kwh,
        meters,
        actual_meters,
        estimated_meters,
        unsettled_meters,
        default_registry_meters,
        llf_unmatched_meters,
        cutoff_utc,
        cutoff_version
    from source
)

select * from renamed
