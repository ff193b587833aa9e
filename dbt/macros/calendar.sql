{#
  Settlement-calendar rules in SQL, mirroring meterlake/calendar.py (the one place they are defined; tested there
  and, for these macros, by the unit tests of int_meter_half_hours). The periods of a day come from the seed
  clock_change_days, written by meterlake.calendar (tests/dbt check it against the module).
#}

{#- The UK clock half-hour (1 = 00:00-00:30 ... 48 = 23:30-24:00) of a settlement period. GB clocks change at
    01:00 UTC: on the 46-period day 01:00-02:00 is skipped (period 3 is 02:00), on the 50-period day 01:00-02:00
    local happens twice (periods 5-6 repeat the clock half-hours 3-4). -#}
{% macro clock_slot(period, periods_in_day) -%}
  (case when {{ periods_in_day }} = 46 and {{ period }} >= 3 then {{ period }} + 2
        when {{ periods_in_day }} = 50 and {{ period }} >= 5 then {{ period }} - 2
        else {{ period }} end)
{%- endmacro %}

{#- ISO weekday of a date: 1 = Monday ... 7 = Sunday. -#}
{% macro iso_weekday(d) -%}
  {{ return(adapter.dispatch('iso_weekday', 'meterlake')(d)) }}
{%- endmacro %}
{% macro default__iso_weekday(d) %}isodow({{ d }}){% endmacro %}
{% macro spark__iso_weekday(d) %}(((dayofweek({{ d }}) + 5) % 7) + 1){% endmacro %}

{#- Season of a settlement date by month: winter (Dec-Feb), spring (Mar-May), summer (Jun-Aug), autumn. -#}
{% macro season(d) -%}
  (case when month({{ d }}) in (12, 1, 2) then 'winter' when month({{ d }}) in (3, 4, 5) then 'spring'
        when month({{ d }}) in (6, 7, 8) then 'summer' else 'autumn' end)
{%- endmacro %}

{#- First day of the month of a date, as a date. -#}
{% macro month_start(d) -%}
  cast({{ dbt.date_trunc('month', d) }} as date)
{%- endmacro %}

{#- Microseconds since 1970 of a UTC timestamp (the unit of source_version). -#}
{% macro epoch_us(ts) -%}
  {{ return(adapter.dispatch('epoch_us', 'meterlake')(ts)) }}
{%- endmacro %}
{% macro default__epoch_us(ts) %}epoch_us({{ ts }}){% endmacro %}
{% macro spark__epoch_us(ts) %}unix_micros({{ ts }}){% endmacro %}

{#- A UTC timestamp from microseconds since 1970. -#}
{% macro from_epoch_us(us) -%}
  {{ return(adapter.dispatch('from_epoch_us', 'meterlake')(us)) }}
{%- endmacro %}
{% macro default__from_epoch_us(us) %}make_timestamp({{ us }}){% endmacro %}
{% macro spark__from_epoch_us(us) %}timestamp_micros({{ us }}){% endmacro %}

{#- UTC end of the settlement date of an instant in period `period` of a day of `periods_in_day` periods, in
    microseconds: local midnights fall on whole UTC hours, so the period's start is the instant floored to the
    half-hour, and the day ends (periods_in_day - period + 1) half-hours later. -#}
{% macro day_end_us(ts, period, periods_in_day) -%}
  (floor({{ epoch_us(ts) }} / 1800000000) * 1800000000
   + ({{ periods_in_day }} - {{ period }} + 1) * cast(1800000000 as bigint))
{%- endmacro %}
