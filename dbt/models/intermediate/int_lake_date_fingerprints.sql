-- What the lake holds for each settlement date, as a fingerprint: rows, their offsets and newest version. A new
-- file (a late read, a correction, a replay) or a compaction of the date changes it; the incremental marts
-- rebuild the dates whose fingerprint differs from the one they were built from.
-- Grain: one row per settlement_date.
select
    settlement_date,
    md5(concat(cast(count(*) as string), '/', cast(sum(kafka_offset) as string), '/',
               cast(max(source_version) as string))) as lake_fingerprint
from {{ ref('stg_lake__reads') }}
group by settlement_date
