-- Invariant (privacy): the marts' meter_point is the lake's pseudonym (P and 24 hex digits,
-- meterlake/pseudonym.py), never an MPAN, MPRN or household id.
{% set marts = ['fct_daily_consumption', 'fct_monthly_consumption', 'fct_economy7_daily',
                'fct_meter_behaviour_monthly', 'dim_meters', 'fct_bills'] %}
{% for mart in marts %}
select '{{ mart }}' as mart, meter_point from {{ ref(mart) }}
where not (length(meter_point) = 25 and substr(meter_point, 1, 1) = 'P'
           and length(translate(lower(substr(meter_point, 2)), '0123456789abcdef', '')) = 0)
{% if not loop.last %}union all{% endif %}
{% endfor %}
