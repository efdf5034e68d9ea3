"""Validation files: SpiceDB's YAML format of schema, relationships, assertions and expected
relations, loaded into a fresh datastore and checked item by item."""

from zanzi.api.validation.loader import ValidationFile, load_validation_file
from zanzi.api.validation.runner import FileReport, Outcome, count, run_file, run_validation

__all__ = [
    "FileReport",
    "Outcome",
    "ValidationFile",
    "count",
    "load_validation_file",
    "run_file",
    "run_validation",
]
