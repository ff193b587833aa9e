"""Meter settings: the bounded context that WRITES to meters (every other part of the platform only reads).

Run: ``meterlake meters command MPAN KIND --param k=v`` (submit), ``meterlake meters run`` (the service that
sends, tracks deadlines, retries and expires), ``meterlake meters gateway`` (a device gateway simulator playing
the meters' side), ``meterlake meters show MPAN`` (desired and confirmed settings, pending commands).

It shares only the core package (:mod:`meterlake`) with the read path: its own topics
(``meters.commands_topic``, ``meters.responses_topic``), its own tables (``meter_commands*``, see
:mod:`streaming.commands.tables`), and nothing of ``streaming.ingest``, ``streaming.store``, ``streaming.mirror``
or ``jobs``.

Modules: :mod:`~streaming.commands.model` (pure: kinds, validation, ids, the state machine, the settings
projection), :mod:`~streaming.commands.registrations` (what a meter is registered as: fuel, SSC, prepay
capability), :mod:`~streaming.commands.tables` (Cassandra), :mod:`~streaming.commands.service` (submit, run,
show), :mod:`~streaming.commands.gateway` (the simulator).
"""
