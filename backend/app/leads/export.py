"""Leads as CSV, safe to open in a spreadsheet.

A cell a spreadsheet would run as a formula (one starting with `=`, `+`, `-`, `@`, a tab
or a carriage return, as OWASP lists) gets a leading `'`, so it shows as text.
"""

import csv
import io
from collections.abc import AsyncIterator

from app.leads.schemas import LeadItem

HEADER = ("id", "session_id", "created_at", "source", "email", "name", "company", "message")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def _row(values: tuple[object, ...]) -> str:
    buffer = io.StringIO()
    cells = ["" if value is None else neutralise(str(value)) for value in values]
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


async def csv_rows(leads: AsyncIterator[LeadItem]) -> AsyncIterator[str]:
    yield _row(HEADER)
    async for lead in leads:
        values = lead.model_dump(mode="json")
        yield _row(tuple(values[column] for column in HEADER))
