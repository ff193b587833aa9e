-- Every meter point of the lake or the registry (pseudonyms only), with its latest registration.
-- Grain: one row per meter_point.
with seen as (
    select meter_point, max(fuel) as fuel, min(settlement_date) as first_settlement_date,
           max(settlement_date) as last_settlement_date
    from {{ ref('int_reads_deduplicated') }}
    group by meter_point
),

registry as (
    select
        registry.*,
        row_number() over (partition by meter_point order by effective_from desc) as newest
    from {{ ref('stg_lake__registry') }} as registry
),

latest as (
    select * from registry where newest = 1
),

meters as (
    select meter_point from seen
    union
    select meter_point from latest
)

select
    meters.meter_point,
    coalesce(latest.fuel, seen.fuel) as fuel,
    latest.meter_point is not null as is_registered,
    latest.gsp_group,
    latest.supplier,
    latest.profile_class,
    latest.ssc,
    coalesce(sscs.tariff_kind, 'unknown') as tariff_kind,
    latest.effective_from as registered_from,
    seen.first_settlement_date,
    seen.last_settlement_date
from meters
left join seen on seen.meter_point = meters.meter_point
left join latest on latest.meter_point = meters.meter_point
left join {{ ref('standard_settlement_configurations') }} as sscs on sscs.ssc = latest.ssc
