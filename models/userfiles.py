"""Reading the files a user hands over (network files, experiment files): bounded and strict.

* :func:`read_bounded` reads a *regular* file of at most :data:`MAX_FILE_BYTES`; a FIFO, a device
  (``/dev/zero``), a directory, or a symlink to one is refused before anything is read, so it
  can neither hang nor exhaust memory.
* :func:`strict_yaml` is PyYAML's safe loader without aliases (``*name``: a 400-byte file of
  nested anchors expands to gigabytes) and without duplicate keys (which would silently keep
  the last value); :func:`strict_json` refuses duplicate keys too.
* :func:`excerpt` is how an error quotes the input: at most a short, one-line piece of it.

>>> strict_yaml("a: 1\\nb: [2, 3]\\n")
{'a': 1, 'b': [2, 3]}
>>> strict_yaml("a: &x [1]\\nb: *x\\n")
Traceback (most recent call last):
...
models.userfiles.StrictError: line 2: aliases (*name) are not allowed
>>> strict_json('{"a": 1, "a": 2}')
Traceback (most recent call last):
...
models.userfiles.StrictError: duplicate key 'a'
>>> excerpt("x" * 100)
"'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' (100 characters)"
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

#: a network or experiment file is text a person wrote: far below this
MAX_FILE_BYTES = 8 * 2**20
EXCERPT = 44


class StrictError(ValueError):
    """An alias or a duplicate key; ``line`` is 1-based (None when not known)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.reason, self.line = message, line


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    """``repr(value)`` cut to ``limit`` characters, on one line, saying how long it was."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit and "\n" not in text:
        return repr(value)
    piece = text[:limit].replace("\n", " ")
    return f"{piece!r}"[:-1] + f"...' ({len(text):,} characters)"


def is_plain_int(text: str, max_digits: int = 18) -> bool:
    """``text`` is ASCII digits, at most ``max_digits`` of them (``str.isdigit`` also accepts
    superscripts such as '²' that ``int`` refuses, and a thousand-digit number is no size).

    >>> is_plain_int("256"), is_plain_int("\u00b2"), is_plain_int("9" * 40)
    (True, False, False)
    """
    return isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= max_digits


def read_bounded(path: str | os.PathLike, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), at most ``limit`` of them.

    Raises :class:`OSError` for what cannot be read and :class:`ValueError` (with the reason) for a
    file that is not a regular file or is too large.
    """
    path = Path(path)
    mode = path.stat().st_mode  # follows symlinks: a link to /dev/zero is /dev/zero
    if stat.S_ISDIR(mode):
        raise ValueError("is a directory")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
            "a socket" if stat.S_ISSOCK(mode) else "not a file"
        raise ValueError(f"is {kind}, not a regular file")
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)  # a file growing while read is still bounded
    if len(data) > limit:
        raise ValueError(f"is larger than {limit // 2**20} MiB; such files are text a person wrote")
    return data


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and duplicate keys (module docstring)."""

    def compose_node(self, parent, index):  # noqa: D401 - PyYAML's hook
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise StrictError("aliases (*name) are not allowed", mark.line + 1)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: PyYAML refuses it itself
                break
            if duplicate:
                raise StrictError(f"duplicate key {excerpt(key)}", key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep)


def strict_yaml(text: str) -> Any:
    """Parse YAML with :class:`_StrictLoader`; :class:`StrictError` (with the line) for an alias or a
    duplicate key, :class:`yaml.YAMLError` for malformed text."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise StrictError(f"duplicate key {excerpt(key)}")
        out[key] = value
    return out


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses duplicate keys (:class:`StrictError`)."""
    return json.loads(text, object_pairs_hook=_no_duplicates)


__all__ = ["MAX_FILE_BYTES", "StrictError", "excerpt", "is_plain_int", "read_bounded", "strict_yaml", "strict_json"]
