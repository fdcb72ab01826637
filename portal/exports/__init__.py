"""Streamed CSV exports (docs/reports.md): ``ExportSpec`` and the column kinds, the builder
registry, and background exports for large files."""

from .spec import (
    BUILDERS,
    Column,
    ExportError,
    ExportSpec,
    build,
    date,
    money,
    number,
    register,
    text,
    when,
)

__all__ = [
    "BUILDERS",
    "Column",
    "ExportError",
    "ExportSpec",
    "build",
    "date",
    "money",
    "number",
    "register",
    "text",
    "when",
]
