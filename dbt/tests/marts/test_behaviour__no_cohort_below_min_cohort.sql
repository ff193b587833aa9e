-- Invariant (privacy): no segment row describes fewer than var('min_cohort') households.
select * from {{ ref('agg_behaviour_segments') }} where meters < {{ var('min_cohort') }}
