"""Prepare Superset's metadata database: migrate it, sync the built-in roles, make the Analyst role and the users.

Run by Superset's own interpreter (``.venv-superset/bin/python infra/superset/bootstrap.py``), never imported by
meterlake: ``meterlake dashboards up`` runs it when the metadata database is new or Superset's version changed.
Idempotent. The configuration comes from ``SUPERSET_CONFIG_PATH``; the passwords from the environment
(``METERLAKE_SUPERSET_ADMIN_PASSWORD``, ``METERLAKE_SUPERSET_ANALYST_PASSWORD``), never the command line.

The Analyst role is Gamma (Superset's read-only role: dashboards and charts, no dataset or database editing) with
read access to every dataset (``all_datasource_access``), so analysts open the dashboards but cannot change the
SQL behind them.
"""
from __future__ import annotations

import os

ANALYST_ROLE = "Analyst"
USERS = (("admin", "Admin", "METERLAKE_SUPERSET_ADMIN_PASSWORD"),
         ("analyst", ANALYST_ROLE, "METERLAKE_SUPERSET_ANALYST_PASSWORD"))


def main() -> None:
    import superset
    from flask_migrate import upgrade
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import security_manager as sm
        from superset.extensions import appbuilder, db

        upgrade(directory=os.path.join(os.path.dirname(superset.__file__), "migrations"))
        appbuilder.add_permissions(update_perms=True)
        sm.sync_role_definitions()

        analyst = sm.add_role(ANALYST_ROLE)
        gamma = sm.find_role("Gamma")
        everything = sm.find_permission_view_menu("all_datasource_access", "all_datasource_access")
        analyst.permissions = [*gamma.permissions, everything]
        db.session.commit()

        for username, role_name, env in USERS:
            password = os.environ[env]
            role = sm.find_role(role_name)
            user = sm.find_user(username=username)
            if user is None:
                sm.add_user(username, username, "meterlake", f"{username}@meterlake.invalid", role, password=password)
            else:
                user.roles = [role]
                sm.update_user(user)
                sm.reset_password(user.id, password)
        print("bootstrap: metadata migrated, roles synced, users admin and analyst ready", flush=True)


if __name__ == "__main__":
    main()
