"""Check cells' machinery: each chapter module registers its exercises' checks in a Registry from `base`."""
