"""Chapter 8 (migrations): its checks, and the private Alembic folders, models and measurements its lesson uses."""
