{#- Generic tests the project needs (dbt hub packages cannot be fetched here, so these few are written out). -#}

{#- No two rows share the values of `columns` (a composite key). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Every row satisfies a boolean SQL expression (nulls fail). -#}
{% test expression_is_true(model, expression, column_name=none) %}
select * from {{ model }} where not coalesce({{ expression }}, false)
{% endtest %}
