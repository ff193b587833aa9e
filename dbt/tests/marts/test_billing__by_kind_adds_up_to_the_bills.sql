-- Invariant: the bills by tariff kind add up to the bills (every bill counted once, in one kind and month).
with bills as (
    select count(*) as bills, sum(total_p) as total_p, sum(energy_kwh) as energy_kwh from {{ ref('fct_bills') }}
),

by_kind as (
    select sum(bills) as kind_bills, sum(total_p) as kind_total_p, sum(energy_kwh) as kind_energy_kwh
    from {{ ref('fct_bills_by_tariff_kind') }}
)

select * from bills cross join by_kind
where bills <> kind_bills or total_p <> kind_total_p or abs(energy_kwh - kind_energy_kwh) > 1e-6
