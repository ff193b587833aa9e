{#
  Incremental marts by settlement date. The config: DuckDB deletes and re-inserts the changed dates' rows;
  Spark overwrites their partitions (dynamic partition overwrite).
#}
{% macro date_incremental_config() -%}
  {%- if target.type == 'spark' -%}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'insert_overwrite',
               'partition_by': ['settlement_date'], 'on_schema_change': 'fail'}) }}
  {%- else -%}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert',
               'unique_key': 'settlement_date', 'on_schema_change': 'fail'}) }}
  {%- endif -%}
{%- endmacro %}

{#- The settlement dates to (re)build: on a first or full build every date; then the dates whose lake
    fingerprint (int_lake_date_fingerprints) is not the one this model's rows were built from. A condition on
    the column `column`. -#}
{% macro changed_settlement_dates(column) -%}
  {%- if is_incremental() -%}
    {{ column }} in (
        select lake.settlement_date
        from {{ ref('int_lake_date_fingerprints') }} as lake
        left join (select distinct settlement_date, lake_fingerprint from {{ this }}) as built
            on built.settlement_date = lake.settlement_date and built.lake_fingerprint = lake.lake_fingerprint
        where built.settlement_date is null)
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
