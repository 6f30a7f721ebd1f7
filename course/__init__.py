"""Backend database practice with async SQLAlchemy: the course's importable package."""

__version__ = "0.1.0"
