"""Chapter-agnostic lesson instruments: set-up, statement counter, timing, EXPLAIN, plots, ER diagram, %sql."""
