-- Late-data service levels per settlement date and source (the kind of read: interval, register or device):
-- how soon after the end of the settlement date the latest version of each read arrived (its source's creation,
-- source_version), as shares within 1 day and within 5 days. Grain: one row per (settlement_date, source).
with reads as (
    select * from {{ ref('int_reads_deduplicated') }}
),

days as (
    select * from {{ ref('int_settlement_days') }}
),

arrivals as (
    select
        reads.settlement_date,
        reads.read_kind as source,
        (reads.source_version - {{ day_end_us('reads.interval_start_utc', 'reads.settlement_period',
                                              'days.periods_in_day') }}) / cast(3600000000 as double) as arrival_h
    from reads
    inner join days on days.settlement_date = reads.settlement_date
)

select
    settlement_date,
    source,
    count(*) as reads,
    sum(case when arrival_h <= 24 then 1 else 0 end) / cast(count(*) as double) as within_1d_share,
    sum(case when arrival_h <= 120 then 1 else 0 end) / cast(count(*) as double) as within_5d_share,
    avg(arrival_h) as mean_arrival_h,
    max(arrival_h) as max_arrival_h
from arrivals
group by settlement_date, source
