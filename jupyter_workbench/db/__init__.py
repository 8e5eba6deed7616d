"""Database adapter: SQLAlchemy models, engine/session handling and Alembic migrations."""

from .database import Database
from .models import Base

__all__ = ["Base", "Database"]
