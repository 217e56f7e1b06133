"""The exact reader: a CSV file read line by line, where one line is one row whatever its quotes.

The loader's fast path is DuckDB's parallel CSV reader. When that reader cannot map a file's rows
to its lines one to one (a stray quote, a line break inside a field, an empty line, mixed line
endings), the loader falls back to this reader. Each line that cannot be a row on its own is
rejected with the error kind DuckDB's reader uses, and its neighbours still load.

The file is streamed: rows come out in Arrow tables of at most ``chunk_rows`` lines, so memory
stays flat in the file's size. Reading errors (``OSError``: a disk, a network share) propagate to
the caller, which records the file as failed and retriable, never as quarantined.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

MAX_LINE_BYTES = 2_000_000
CHUNK_ROWS = 200_000
REJECT_COLUMNS = ("line", "csv_line", "error_type", "column_name", "error_message")


@dataclass
class Chunk:
    """Up to ``chunk_rows`` lines of a file: the rows that split into the right number of fields
    (``rows``: columns ``c0..cN`` as text, ``_row_number``, ``_text``) and the lines rejected
    (``rejects``: line (the header is line 1, DuckDB's convention), csv_line, error_type,
    column_name, error_message)."""

    rows: pa.Table
    rejects: pa.Table


def _split(text: str) -> list[str] | tuple[str, str]:
    """The line's fields, or (error kind, message) when it is not one CSV record."""
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as e:
        message = str(e)
        if "end of data" in message:
            kind = "UNQUOTED VALUE"
        elif "new-line" in message:
            kind = "LINE BREAK IN FIELD"
        else:
            kind = "MALFORMED QUOTES"
        return kind, message.split(" - ")[0]


def read(path: Path, width: int, chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Stream the data lines of a CSV file (after its header) as ``Chunk``s of ``width`` fields."""
    if csv.field_size_limit() < MAX_LINE_BYTES:  # a field may be as long as a line
        csv.field_size_limit(MAX_LINE_BYTES)

    def empty():
        return [[] for _ in range(width)], [], [], {k: [] for k in REJECT_COLUMNS}

    values, numbers, texts, rejects = empty()

    def reject(number: int, raw: bytes, kind: str, message: str) -> None:
        rejects["line"].append(number + 1)
        rejects["csv_line"].append(raw.decode("utf-8", "backslashreplace"))
        rejects["error_type"].append(kind)
        rejects["column_name"].append(None)
        rejects["error_message"].append(message)

    def chunk() -> Chunk:
        rows = pa.table(
            {
                **{f"c{i}": pa.array(v, pa.string()) for i, v in enumerate(values)},
                "_row_number": pa.array(numbers, pa.int64()),
                "_text": pa.array(texts, pa.string()),
            }
        )
        rej = pa.table(
            {
                "line": pa.array(rejects["line"], pa.int64()),
                "csv_line": pa.array(rejects["csv_line"], pa.string()),
                "error_type": pa.array(rejects["error_type"], pa.string()),
                "column_name": pa.array(rejects["column_name"], pa.string()),
                "error_message": pa.array(rejects["error_message"], pa.string()),
            }
        )
        return Chunk(rows, rej)

    pending, yielded = 0, False
    with open(path, "rb") as fh:
        fh.readline()  # the header, checked by the caller
        for number, raw in enumerate(fh, start=1):
            pending += 1
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > MAX_LINE_BYTES:
                reject(number, line, "LINE SIZE OVER MAXIMUM", f"line of {len(line):,} bytes")
            else:
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as e:
                    reject(number, line, "INVALID ENCODING", f"not UTF-8 at byte {e.start}")
                    text = None
                if text is None:
                    pass
                elif not text:
                    reject(number, line, "EMPTY LINE", "empty line")
                elif "\x00" in text:
                    reject(number, line, "NUL BYTE", "NUL byte in the line")
                else:
                    fields = _split(text)
                    if isinstance(fields, tuple):
                        reject(number, line, *fields)
                    elif len(fields) != width:
                        kind = "MISSING COLUMNS" if len(fields) < width else "TOO MANY COLUMNS"
                        reject(number, line, kind, f"{len(fields)} fields, expected {width}")
                    else:
                        for i, v in enumerate(fields):
                            values[i].append(v if v != "" else None)
                        numbers.append(number)
                        texts.append(text)
            if pending >= chunk_rows:
                yield chunk()
                values, numbers, texts, rejects = empty()
                pending, yielded = 0, True
    if pending or not yielded:  # at least one chunk, so an empty file has its (empty) tables
        yield chunk()
