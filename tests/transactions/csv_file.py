"""The transactions console's CSV as a test reads it: the filters line, the header and the
data rows, and the summary after them (docs/transactions.md "The CSV")."""

import csv
import io
from dataclasses import dataclass


@dataclass
class TransactionsCsv:
    lines: list  # the file's text lines (BOM dropped)
    filters: dict  # "Filters:" line: label -> value
    header: list
    rows: list  # the data rows, as lists of cells
    # After the rows and an empty line, a row per summary line: label (Type column) ->
    # figure as the file writes it (the Amount column's rupees, or a count in the Id column).
    summary: dict

    def records(self):
        return [dict(zip(self.header, row, strict=True)) for row in self.rows]


def read(text):
    lines = text.lstrip("\ufeff").splitlines()
    [head] = next(csv.reader(io.StringIO(lines[1])))
    filters = dict(part.split(": ", 1) for part in head.removeprefix("Filters: ").split("; "))
    table = list(csv.reader(io.StringIO("\n".join(lines[lines.index("") + 1 :]))))
    header = table[0]
    end = table.index([]) if [] in table else len(table)
    summary = {}
    for row in table[end + 1 :]:
        cells = dict(zip(header, row, strict=True))
        summary[cells["Type"]] = cells["Amount"] or cells["Id"]
    return TransactionsCsv(lines, filters, header, table[1:end], summary)


def paise(figure):
    """A money cell ("1059.00", "-646.95") in paise."""
    sign = -1 if figure.startswith("-") else 1
    whole, _, part = figure.lstrip("-").partition(".")
    return sign * (int(whole) * 100 + int(part or 0))
