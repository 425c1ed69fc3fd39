"""Input errors and faults of the offline commands, and how a command reports them.

Exit codes of ``replay``, ``evaluate``, ``report`` and ``simulate``:

* 0 - done;
* 1 - done with what could be read: the input was cut short (a truncated ``.gz``, a CRC
  error, a last line cut mid-way); outputs hold everything before the fault; or stdout was
  closed by its reader (``| head``), quietly;
* 2 - unusable input or arguments: one line ``spikedetect: error: FILE:LINE: what is wrong``
  on stderr, no traceback (also when too much of the input was rejected or late,
  ``--max-reject-rate``);
* 3 - a bug: one line naming the exception; ``SPIKEDETECT_DEBUG=1`` shows the traceback.

>>> str(InputError("truth.json", 3, "window_ms must be positive"))
'truth.json:3: window_ms must be positive'
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click

from spikedetect.core.errors import ConfigError, SpikedetectError

EXIT_PARTIAL = 1
EXIT_INPUT = 2
EXIT_BUG = 3

F = TypeVar("F", bound=Callable[..., Any])


class InputError(SpikedetectError):
    """An input (or output path) that cannot be used; ``line`` 0 when it is the file as a whole."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(message)
        self.path, self.line, self.message = path, line, message

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Fault:
    """Input that ended early: read up to ``line`` (the first line not read whole), then ``message``."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def echo_error(message: str) -> None:
    click.echo(f"spikedetect: error: {message}", err=True)


def echo_warning(message: str) -> None:
    click.echo(f"spikedetect: warning: {message}", err=True)


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    """Print one error line and leave with ``code``."""
    echo_error(message)
    raise click.exceptions.Exit(code)


def guarded(func: F) -> F:
    """Wrap a click command: input, configuration and OS errors become one line and exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # `... --out - | head`: the reader stopped; leave quietly
            with contextlib.suppress(OSError, ValueError):  # later flushes at exit must not fail again
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(EXIT_PARTIAL) from None
        except InputError as exc:
            fail(str(exc))
        except ConfigError as exc:
            fail(str(exc))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback on request
            if os.environ.get("SPIKEDETECT_DEBUG"):
                traceback.print_exc()
            fail(f"internal error {type(exc).__name__}: {exc} (SPIKEDETECT_DEBUG=1 shows the traceback)",
                 EXIT_BUG)  # fmt: skip

    return wrapper  # type: ignore[return-value]


__all__ = ["EXIT_BUG", "EXIT_INPUT", "EXIT_PARTIAL", "Fault", "InputError", "echo_error", "echo_warning",
           "fail", "guarded"]  # fmt: skip
