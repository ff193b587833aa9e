-- Data quality per meter-day. Grain: (settlement_date, meter_point).
with source as (
    select * from {{ lake_source('quality') }}
),

renamed as (
    select
        cast(settlement_date as date) as settlement_date,
        meter_point,
        expected_periods,
        received_periods,
        estimated_periods,
        source_estimated_periods,
        missing_periods,
        completeness,
        estimated_share,
        first_arrival_h,
        last_arrival_h,
        late_reads,
        quarantined_reads,
        flagged_reads,
        register_reads
    from source
)

select * from renamed
