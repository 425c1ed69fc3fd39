"""Reading incident events (JSONL) for ``evaluate`` and ``report``: line numbers, faults, field types.

A line that is not JSON, not an object, or an incident event whose fields have the wrong
type is an :class:`~spikedetect.files.faults.InputError` naming the file and line (exit 2).
A last line cut short (no newline, not JSON) and a truncated or corrupt ``.gz`` are faults:
reading stops there, the fault is added to ``faults`` and the command ends with exit 1.

>>> import io
>>> faults = []
>>> list(iter_jsonl(io.BytesIO(b'{"a": 1}\\n\\n{"b": 2'), "x.jsonl", faults))
[{'a': 1}]
>>> str(faults[0])
'x.jsonl:3: input ends early: the last line is cut short (no newline at the end, not JSON)'
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from spikedetect.files.faults import Fault, InputError
from spikedetect.files.sources import BatchReader, open_binary

# field -> allowed types (None allowed where listed); checked when present
_TYPES: dict[str, tuple[type, ...]] = {
    "incident_id": (str,), "service": (str,), "region": (str,), "type": (str,), "schema": (str,),
    "seq": (int, float), "opened_at": (str, int, float), "detected_at": (str, int, float, type(None)),
    "closed_at": (str, int, float, type(None)), "children": (list, type(None)), "detector": (dict, type(None)),
    "regions": (list, type(None)),
}  # fmt: skip


MIN_MS, MAX_MS = -62_135_596_800_000, 253_402_300_799_999  # years 1 to 9999
TIME_FIELDS = ("opened_at", "detected_at", "closed_at", "peak_at")


def check_incident(obj: dict[str, Any]) -> str | None:
    """Why an incident event cannot be used, or None."""
    for name in TIME_FIELDS:
        value = obj.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and not MIN_MS <= value <= MAX_MS:
            return f"{name} {value!r} is not a time (epoch ms of the years 1 to 9999)"
    for name, kinds in _TYPES.items():
        if name in obj and (not isinstance(obj[name], kinds) or isinstance(obj[name], bool)):
            want = " or ".join("null" if k is type(None) else {"str": "a string", "int": "a number",
                                                                  "float": "a number", "list": "a list",
                                                                  "dict": "an object"}[k.__name__]
                               for k in kinds)  # fmt: skip
            return f"{name} must be {want}, got {orjson.dumps(obj[name]).decode()[:60]}"
    for field in ("children", "regions"):
        for child in obj.get(field) or []:
            if not isinstance(child, dict) or not isinstance(child.get("region", ""), str):
                return f"{field} must be objects with a string region, got {orjson.dumps(child).decode()[:60]}"
            if field == "regions" and (why := check_incident({k: v for k, v in child.items() if k != "regions"})):
                return f"regions: {why}"
    return None


def iter_jsonl(stream: BinaryIO, name: str, faults: list[Fault], *, incidents: bool = False
               ) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The objects of a JSONL stream; see the module docstring for errors and faults."""
    reader = BatchReader(stream, name, 5_000)
    for batch in reader:
        for line, raw in zip(reader.line_numbers, batch, strict=True):
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                if reader.cut_mid_line and line == reader.lines:
                    faults.append(Fault(name, line, "input ends early: the last line is cut short (no newline at "
                                        "the end, not JSON)"))  # fmt: skip
                    return
                raise InputError(name, line, f"not JSON ({exc.msg} at column {exc.colno})") from exc
            if not isinstance(obj, dict):
                raise InputError(name, line, f"not a JSON object but {type(obj).__name__}")
            if incidents and (why := check_incident(obj)) is not None:
                raise InputError(name, line, why)
            yield obj
    if reader.fault is not None:
        faults.append(reader.fault)


def read_jsonl(path: str, faults: list[Fault] | None = None, *, incidents: bool = False
               ) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Objects of a JSONL file ('.gz' ok, '-' is stdin); blank lines are skipped."""
    name = "<stdin>" if path == "-" else path
    faults = [] if faults is None else faults
    stream = open_binary(path)
    try:
        yield from iter_jsonl(stream, name, faults, incidents=incidents)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


__all__ = ["check_incident", "iter_jsonl", "read_jsonl"]
