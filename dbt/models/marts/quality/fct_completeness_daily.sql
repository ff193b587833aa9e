-- Completeness service level per settlement date: how many expected meter-days arrived whole, how much was
-- estimated or missing, and how late. From the quality job (docs/jobs.md). Grain: one row per settlement_date.
with quality as (
    select * from {{ ref('stg_lake__quality') }}
)

select
    settlement_date,
    count(*) as expected_meters,
    sum(case when received_periods = expected_periods then 1 else 0 end) as complete_meters,
    sum(case when received_periods = expected_periods then 1 else 0 end) / cast(count(*) as double)
        as complete_share,
    avg(completeness) as mean_completeness,
    avg(estimated_share) as mean_estimated_share,
    sum(expected_periods) as expected_periods,
    sum(received_periods) as received_periods,
    sum(estimated_periods) as estimated_periods,
    sum(missing_periods) as missing_periods,
    sum(late_reads) as late_reads,
    max(last_arrival_h) as max_arrival_h
from quality
group by settlement_date
