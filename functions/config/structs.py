"""Typed records for the card and the settings, on msgspec: validated, cheap to import.

msgspec replaced pydantic here because pydantic's import and schema building were the whole
cold-start gap between this function and a minimal handler (README, dependency notes).

- ``Open``: a struct that keeps the keys it does not declare in ``extra``, so an older
  function reads a card written by a newer exporter, and a read-modify-write keeps them.
- ``load(cls, data)``: builtins -> struct, validated (``msgspec.ValidationError``, a
  ValueError, says what and where: ``... - at `$.tokenizer.file```); every Open struct
  inside gets the keys it does not declare.
- ``dump(obj)``: struct -> builtins, each Open struct's extra keys back beside its fields.
- ``read_env(cls, environ)``: a struct from environment strings (the Settings), a bad value
  refused with EnvError naming the variable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class Open(msgspec.Struct, kw_only=True):
    """A struct whose undeclared keys live in ``extra`` (read, kept, written back)."""

    extra: Any = msgspec.field(default_factory=dict)
    """Keys this schema does not declare, as read: a ``dict[str, Any]``. (Typed Any so that
    a JSON key that happens to be named ``extra`` is never validated as this bag: it lands
    in here like any other unknown key.)"""


def load(cls: type[T], data: Any, *, strict: bool = True,
         dec_hook: Callable[[type, Any], Any] | None = None) -> T:
    """``data`` (JSON builtins) as a validated ``cls``, unknown keys kept by Open structs."""
    obj = msgspec.convert(data, cls, strict=strict, dec_hook=dec_hook)
    _keep_unknown(obj, data)
    return obj


def _keep_unknown(obj: Any, raw: Any) -> None:
    """Walk ``obj`` and the builtins it came from together; fill each Open's ``extra``."""
    if isinstance(obj, msgspec.Struct) and isinstance(raw, dict):
        names = obj.__struct_fields__
        if isinstance(obj, Open):
            obj.extra = {k: v for k, v in raw.items() if k not in names or k == "extra"}
        for name in names:
            if name != "extra" and name in raw:
                _keep_unknown(getattr(obj, name), raw[name])
    elif isinstance(obj, list) and isinstance(raw, list):
        for item, raw_item in zip(obj, raw):
            _keep_unknown(item, raw_item)


def dump(obj: Any, *, omit_none: bool = False, exclude: frozenset[str] = frozenset()) -> Any:
    """``obj`` as builtins: structs as dicts in field order, an Open's extra keys after its
    fields; ``omit_none`` drops None fields (not None items of lists); ``exclude`` names
    top-level fields to leave out. Subclasses of str, float and int come out plain."""
    if isinstance(obj, msgspec.Struct):
        out = {}
        for name in obj.__struct_fields__:
            value = getattr(obj, name)
            if name in exclude or (value is None and omit_none) or (
                    name == "extra" and isinstance(obj, Open)):
                continue
            out[name] = dump(value, omit_none=omit_none)
        if isinstance(obj, Open):
            out.update((k, dump(v, omit_none=omit_none)) for k, v in obj.extra.items()
                       if k not in out and not (v is None and omit_none))
        return out
    if isinstance(obj, list | tuple):
        return [dump(v, omit_none=omit_none) for v in obj]
    if isinstance(obj, dict):
        return {k: dump(v, omit_none=omit_none) for k, v in obj.items()}
    for plain in (str, float, int):  # subclasses (torch's TorchVersion, np.float64) as plain
        if isinstance(obj, plain) and type(obj) is not plain and not isinstance(obj, bool):
            return plain(obj)
    return obj


class EnvError(ValueError):
    """A bad environment value: the message starts with the variable's name."""


_BOOL_WORDS = {"yes": "true", "on": "true", "y": "true", "t": "true",
               "no": "false", "off": "false", "n": "false", "f": "false"}
_WHERE = re.compile(r"^(?P<why>.*) - at `\$\.(?P<name>\w+)(?P<rest>.*)`$", re.DOTALL)


def read_env(cls: type[T], env: Mapping[str, str]) -> T:
    """``cls`` from environment strings, each field read from its UPPER-CASE name; unknown
    variables ignored. Strings convert to numbers and booleans (true/false, 1/0, yes/no,
    on/off), list fields are read as JSON, Path fields from their string. A bad value
    raises EnvError: ``BATCH_MAX_ROWS=0: Expected `int` >= 1``."""
    values: dict[str, object] = {}
    for name, kind in _annotations(cls).items():
        raw = env.get(name.upper())
        if raw is None:
            continue
        if "list" in kind:
            try:
                values[name] = json.loads(raw)
            except ValueError as exc:
                raise EnvError(f"{name.upper()} is not JSON: {exc}") from None
        else:
            values[name] = _BOOL_WORDS.get(raw.strip().lower(), raw) if kind == "bool" else raw
    try:
        return load(cls, values, strict=False, dec_hook=_path)
    except msgspec.ValidationError as exc:
        raise EnvError(_name_the_variable(str(exc), values)) from None


def _annotations(cls: type) -> dict[str, str]:
    """Field name -> its annotation as written, for the fields of struct ``cls``. (Not
    ``msgspec.structs.fields``: resolving the hints costs ~1 ms of the cold start, and
    msgspec resolves them once more to convert.)"""
    written: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        written.update(getattr(klass, "__annotations__", {}))
    return {name: getattr(written[name], "__name__", str(written[name]))
            for name in cls.__struct_fields__}  # type: ignore[attr-defined]


def _path(kind: type, value: Any) -> Any:
    """msgspec's hook for a type it does not know: Path fields from strings."""
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(kind)


def _name_the_variable(message: str, values: Mapping[str, object]) -> str:
    """msgspec's ``why - at `$.field[0].key``` as ``FIELD=value: why (at [0].key)``."""
    where = _WHERE.match(message)
    if where is None:
        return message
    name, why, rest = where["name"], where["why"], where["rest"]
    value = values.get(name)
    shown = f"={value}" if isinstance(value, str) else ""
    return f"{name.upper()}{shown}: {why}" + (f" (at {rest})" if rest else "")
