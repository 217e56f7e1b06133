"""Text that goes into DuckDB SQL: string literals and file names for DuckDB's readers.

Values that are not bound as parameters (ATTACH, COPY ... TO, a reader in a larger statement) are
written as literals here and nowhere else, so a data directory named ``it's [x]`` works everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path


def literal(value: str | Path) -> str:
    """``value`` as a SQL string literal (quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def exact_file(path: str | Path) -> str:
    """A file name DuckDB's readers (read_csv, read_parquet…) take as exactly that file. They
    expand glob characters even in a quoted or bound name (``read_csv('b[x]/f.csv')`` reads
    ``bx/f.csv``), so each of ``*``, ``?`` and ``[`` is put in a character class of its own. Bind
    the result as a parameter, or wrap it in :func:`literal`."""
    return re.sub(r"[*?\[]", lambda m: f"[{m.group()}]", str(path))
