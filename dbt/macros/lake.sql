{#
  The lake's tables as relations, on either engine. Where a table's files lie is the source's `meta.lake_glob`
  (directories under the lake root, docs/lake.md and docs/jobs.md); the root is METERLAKE_PATHS__LAKE, a local
  path or hdfs://host:port/path (default: the repository's lake/, seen from dbt/).

  * DuckDB: read_parquet over the glob's Parquet files, union_by_name (files of a later mirror may have more
    columns); the reads get hive partitioning on settlement_date, so a filter on the date skips other dates'
    files. The jobs' outputs carry their partition columns inside the files (docs/jobs.md): no hive partitioning.
  * Spark: parquet.`glob` (a glob of the partition directories, or of a job output's current files: Spark reads
    the columns from the files and does not infer partitions from directory names, whose types it could get
    wrong).
#}
{% macro lake_root() -%}
  {{- env_var('METERLAKE_PATHS__LAKE', '../lake').rstrip('/') -}}
{%- endmacro %}

{#- A job's output is versioned (docs/lake.md): its rows are its current version's files only. `meterlake models
    build` lists them in METERLAKE_DBT_LAKE_FILES ({source: [files]}), and both engines read exactly those files;
    a plain `dbt build` without that list reads every version present under the glob (the current one and, for
    the grace period, the one it replaced). -#}
{% macro lake_files(name) -%}
  {{ return(fromjson(env_var('METERLAKE_DBT_LAKE_FILES', '{}')).get(name)) }}
{%- endmacro %}

{% macro lake_relation(glob, hive=false, files=none) -%}
  {{ return(adapter.dispatch('lake_relation', 'meterlake')(glob, hive, files)) }}
{%- endmacro %}

{% macro default__lake_relation(glob, hive, files) -%}
  {%- if files -%}
  read_parquet([{%- for f in files -%}'{{ f }}'{{ ", " if not loop.last }}{%- endfor -%}],
               hive_partitioning = {{ 'true' if hive else 'false' }}, union_by_name = true)
  {%- else -%}
  read_parquet('{{ lake_root() }}/{{ glob }}/**/*.parquet',
               hive_partitioning = {{ 'true' if hive else 'false' }}, union_by_name = true)
  {%- endif -%}
{%- endmacro %}

{#- Spark: the listed files as one Hadoop glob, their common directory and `{rest,rest,...}` (a brace may hold
    slashes), so a superseded version's files are not read; without a list, the glob's directories. -#}
{% macro spark__lake_relation(glob, hive, files) -%}
  {%- if files -%}
  parquet.`{{ files_glob(files) }}`
  {%- else -%}
  parquet.`{{ lake_root() }}/{{ glob }}`
  {%- endif -%}
{%- endmacro %}

{% macro files_glob(files) -%}
  {%- if files | length == 1 -%}
    {{- files[0] -}}
  {%- else -%}
    {%- set first = files[0].split('/') -%}
    {%- set common = namespace(n=(first | length) - 1) -%}
    {%- for f in files[1:] -%}
      {%- set parts = f.split('/') -%}
      {%- set same = namespace(n=0, on=true) -%}
      {%- for i in range([common.n, (parts | length) - 1] | min) -%}
        {%- if same.on and parts[i] == first[i] -%}{%- set same.n = i + 1 -%}{%- else -%}{%- set same.on = false -%}{%- endif -%}
      {%- endfor -%}
      {%- set common.n = same.n -%}
    {%- endfor -%}
    {%- set base = first[:common.n] | join('/') -%}
    {{- base -}}/{ {%- for f in files -%}{{ f[(base | length) + 1:] }}{{ ',' if not loop.last }}{%- endfor -%} }
  {%- endif -%}
{%- endmacro %}

{#- The relation of a lake source declared in _lake__sources.yml: source('lake', name) resolved to its files. -#}
{% macro lake_source(name) -%}
  {#- the dependency on the source, so lineage, freshness and selection know it -#}
  {%- do source('lake', name) -%}
  {%- if execute -%}
    {%- set node = graph.sources.values() | selectattr('source_name', 'equalto', 'lake')
                                          | selectattr('name', 'equalto', name) | first -%}
    {%- if node is none -%}
      {{ exceptions.raise_compiler_error("no lake source named " ~ name) }}
    {%- endif -%}
    {{ lake_relation(node.meta.lake_glob, node.meta.get('hive_partitioning', false), lake_files(name)) }}
  {%- endif -%}
{%- endmacro %}

{#- `dbt source freshness` over the lake: a lake source is its files (lake_relation), not a table of the
    warehouse. Other sources keep dbt's own query. -#}
{% macro lake_collect_freshness(source, loaded_at_field, filter) %}
  {%- set node = graph.sources.values() | selectattr('source_name', 'equalto', 'lake')
                                        | selectattr('identifier', 'equalto', source.identifier) | first -%}
  {%- if node is none -%}
    {{ return(dbt.default__collect_freshness(source, loaded_at_field, filter)) }}
  {%- endif -%}
  {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
    select max({{ loaded_at_field }}) as max_loaded_at, {{ current_timestamp() }} as snapshotted_at
    from {{ lake_relation(node.meta.lake_glob, node.meta.get('hive_partitioning', false), lake_files(node.name)) }} as lake
    {% if filter %}where {{ filter }}{% endif %}
  {%- endcall %}
  {{ return(load_result('collect_freshness')) }}
{% endmacro %}
{% macro duckdb__collect_freshness(source, loaded_at_field, filter) %}
  {{ return(lake_collect_freshness(source, loaded_at_field, filter)) }}
{% endmacro %}
{% macro spark__collect_freshness(source, loaded_at_field, filter) %}
  {{ return(lake_collect_freshness(source, loaded_at_field, filter)) }}
{% endmacro %}

{#- The read model's columns (meterlake/schema.py: the contract shared by the lake, dbt and notebooks), typed:
    the columns every model of reads starts with (stg_lake__reads, stg_lake__clean_reads,
    int_reads_deduplicated). `provenance=true` adds where each copy of a read came from (its source file and
    line, device, source version and Kafka position): the columns of every version and copy, which the live
    version's order reads (stg_lake__reads, int_reads_deduplicated). -#}
{% macro read_model_columns(provenance=false) -%}
        meter_point,
        meter_serial,
        fuel,
        register_id,
        read_kind,
        interval_start_utc,
        cast(settlement_date as date) as settlement_date,
        cast(settlement_period as int) as settlement_period,
        value,
        unit,
        quality
{%- if provenance %},
        source_file,
        source_line,
        device_id,
        source_version,
        kafka_topic,
        kafka_partition,
        kafka_offset
{%- endif %}
{%- endmacro %}
