"""Alembic migrations of the conversation store (run on open by ``workbench.store.database.migrate``)."""
