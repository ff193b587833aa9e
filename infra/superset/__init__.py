"""Apache Superset for meterlake's dashboards: one process on loopback, provisioned from the YAML in ``assets/``.

``meterlake dashboards up|down|status|export`` (:mod:`infra.superset.instance`).
"""
