"""Planning variants: a file of changes against the current city, validated, modelled, analysed,
compared and published (see the README's "Planning variants")."""

from __future__ import annotations

from importlib import resources

SCHEMA_VERSION = "1.0"


def schema_text() -> str:
    """The variant JSON Schema (``schema/variant-1.0.schema.json``) as published in every release."""
    return resources.files(__package__).joinpath(f"schema/variant-{SCHEMA_VERSION}.schema.json").read_text("utf-8")
