"""Database adapter: SQLAlchemy models (``.models``), engine/session handling and Alembic
migrations (``.database``). Import those modules directly: this package imports nothing, so
what does not touch the database (a hub user server in client mode) never pays for it."""
