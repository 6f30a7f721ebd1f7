"""The small models chapter 8 evolves (customers, versions 1 to 3), on a MetaData with a naming convention."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Enum, Index, Integer, MetaData, String, Table, false, func

# Chapter 7's convention, the one the course's models use: names are predictable, so a migration can drop or
# alter a constraint by name on every backend (SQLite's batch mode needs names to find them).
from course.domain.models import NAMING_CONVENTION

TIERS_V1 = ("free", "pro")
TIERS_V3 = ("free", "pro", "team")


def new_metadata(*, convention: bool = True) -> MetaData:
    """A MetaData of its own for each model version, so versions never share tables."""
    return MetaData(naming_convention=NAMING_CONVENTION) if convention else MetaData()


def _common(*, email_unique: bool = True) -> list[Column]:
    return [
        Column("id", Integer, primary_key=True),
        Column("email", String(255), nullable=False, unique=email_unique),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


def customers_v1(*, convention: bool = True) -> MetaData:
    """Version 1: a customer has an email, an optional full name, a country and a tier."""
    metadata = new_metadata(convention=convention)
    Table(
        "customers",
        metadata,
        *_common(),
        Column("fullname", String(200), nullable=True),
        Column("country", String(2), nullable=False, server_default="US"),
        Column("tier", Enum(*TIERS_V1, name="customer_tier"), nullable=False, server_default="free"),
    )
    return metadata


def customers_v2(*, convention: bool = True) -> MetaData:
    """Version 2: `fullname` is renamed `display_name`, and a NOT NULL opt-in flag with a default appears."""
    metadata = new_metadata(convention=convention)
    Table(
        "customers",
        metadata,
        *_common(),
        Column("display_name", String(200), nullable=True),
        Column("country", String(2), nullable=False, server_default="US"),
        Column("tier", Enum(*TIERS_V1, name="customer_tier"), nullable=False, server_default="free"),
        Column("marketing_opt_in", Boolean, nullable=False, server_default=false()),
    )
    return metadata


def customers_v3(*, convention: bool = True) -> MetaData:
    """Version 3: the default country changes and the tier gets a third value (two changes autogenerate may miss)."""
    metadata = new_metadata(convention=convention)
    Table(
        "customers",
        metadata,
        *_common(),
        Column("display_name", String(200), nullable=True),
        Column("country", String(2), nullable=False, server_default="GB"),
        Column("tier", Enum(*TIERS_V3, name="customer_tier"), nullable=False, server_default="free"),
        Column("marketing_opt_in", Boolean, nullable=False, server_default=false()),
    )
    return metadata


def exercise_8_1() -> MetaData:
    """Exercise 8.1's target: version 1 plus an optional phone, a NOT NULL opt-in with a default, a country index."""
    metadata = customers_v1()
    customers = metadata.tables["customers"]
    customers.append_column(Column("phone", String(30), nullable=True))
    customers.append_column(Column("marketing_opt_in", Boolean, nullable=False, server_default=false()))
    Index(None, customers.c.country)
    return metadata


def exercise_8_2() -> MetaData:
    """Exercise 8.2's target: version 1 with `fullname` renamed `display_name`, nothing else."""
    metadata = new_metadata()
    Table(
        "customers",
        metadata,
        *_common(),
        Column("display_name", String(200), nullable=True),
        Column("country", String(2), nullable=False, server_default="US"),
        Column("tier", Enum(*TIERS_V1, name="customer_tier"), nullable=False, server_default="free"),
    )
    return metadata
