-- The registration in force for each meter on each settlement date of the lake: the latest effective_from at
-- or before the date whose effective_to (exclusive), if any, is after it (docs/jobs.md, the registry).
-- Grain: one row per (settlement_date, meter_point) registered that day.
with registry as (
    select * from {{ ref('stg_lake__registry') }}
),

days as (
    select settlement_date from {{ ref('int_settlement_days') }}
),

candidates as (
    select
        days.settlement_date,
        registry.*,
        row_number() over (partition by days.settlement_date, registry.meter_point
                           order by registry.effective_from desc) as newest
    from days
    inner join registry
        on registry.effective_from <= days.settlement_date
        and (registry.effective_to is null or registry.effective_to > days.settlement_date)
)

select settlement_date, meter_point, fuel, gsp_group, supplier, profile_class, ssc, llfc, measurement_class,
       effective_from
from candidates
where newest = 1
