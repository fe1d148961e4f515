"""Alembic environment: one transaction for the whole upgrade, serialised by an advisory lock."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, make_url, pool, text

from app.migrate import MIGRATION_LOCK_KEY


def run_migrations_online() -> None:
    url = make_url(context.config.attributes["database_url"])
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the service ships psycopg2.
    engine = create_engine(url.set(drivername="postgresql+psycopg2"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=False)
        with context.begin_transaction():
            # Taken inside the transaction, before Alembic reads the current revision, and
            # released by the commit: a concurrent run waits here, then finds nothing to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            # Set after the lock wait: DDL must not queue for long behind application
            # transactions, since every query behind it would queue too.
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text("SET LOCAL statement_timeout = 0"))
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `python -m app.migrate`")
run_migrations_online()
