"""Alembic environment: runs the migrations on the connection the store hands over.

The store runs ``alembic upgrade head`` programmatically on open (see ``workbench/store/database.py``);
it passes its open connection in ``config.attributes["connection"]``. Running ``alembic`` from the
command line needs the same: a config whose ``sqlalchemy.url`` names the database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # the alembic command line
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
