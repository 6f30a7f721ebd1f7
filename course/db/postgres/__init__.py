"""PostgreSQL: the course's local server (provider, local binaries) and server-level chores (admin)."""
