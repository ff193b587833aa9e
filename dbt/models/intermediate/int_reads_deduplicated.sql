-- The latest version of each read: the lake's rule (docs/lake.md, the `reads` view of `meterlake lake sql`).
-- Per read key the row with the highest source_version; copies of one version are the same read and the first
-- (lowest Kafka topic, partition, offset, then source file and line) stands for them. Nulls sort last, as in
-- DuckDB's view. settlement_date leads the partition: it is a function of interval_start_utc, so the key is the
-- same, and a filter on the date reaches the files under the window.
-- Grain: one row per (meter_point, meter_serial, register_id, read_kind, interval_start_utc, device_id, unit).
with reads as (
    select * from {{ ref('stg_lake__reads') }}
),

ranked as (
    select
        reads.*,
        row_number() over (
            partition by settlement_date, meter_point, meter_serial, register_id, read_kind, interval_start_utc,
                         device_id, unit
            order by source_version desc, kafka_topic asc nulls last, kafka_partition asc nulls last,
                     kafka_offset asc nulls last, source_file asc nulls last, source_line asc nulls last
        ) as version_rank
    from reads
)

select
    {{ read_model_columns(provenance=true) }}
from ranked
where version_rank = 1
