"""Declared graph inputs of a torch model: ``--input name:dtype:shape[:LOW..HIGH]``.

``shape`` is the per-row shape, comma-separated; a dimension that is not a number is a
dynamic axis of that name (``ids:int64:seq:0..29999``); an empty shape is one value per row
(``user_id:int64::0..9``, [N]). The range is what sample rows
are drawn from (integers: both ends included); it is kept in the card's extra
``input_ranges`` so ``verify``/``optimize``/``quantize`` draw from it later too.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

import numpy as np

from functions.config.card import TensorSpec
from model_export.exit_codes import InputError

Bad = argparse.ArgumentTypeError  # argparse prints "argument --input: MESSAGE", exits 2
DTYPES = ("float32", "float64", "float16", "int64", "int32", "bool")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class DeclaredInput:
    """One graph input: name, dtype, per-row dims (int, or str for a dynamic axis), range."""

    name: str
    dtype: str
    dims: tuple[int | str, ...]
    bounds: tuple[float, float] | None = None

    def tensor_spec(self) -> TensorSpec:
        """As the card lists it: batch and dynamic axes None."""
        return TensorSpec(name=self.name, dtype=self.dtype,
                          shape=[None, *(d if isinstance(d, int) else None for d in self.dims)])

    def dynamic_axes(self) -> dict[int, str]:
        """torch.onnx ``dynamic_axes`` entry: batch, and every named dimension."""
        return {0: "batch", **{i + 1: d for i, d in enumerate(self.dims) if isinstance(d, str)}}


def parse(text: str) -> DeclaredInput:
    """``name:dtype:shape[:LOW..HIGH]`` -> DeclaredInput (an argparse type: a bad one is
    argparse's usage error, exit 2)."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise Bad(f"{text!r}: expected name:dtype:shape[:LOW..HIGH], e.g. "
                         "ids:int64:16:0..29999 or image:float32:3,32,32")
    name, dtype, shape = parts[:3]
    if not _NAME.match(name):
        raise Bad(f"{text!r}: {name!r} is not a usable input name")
    if dtype not in DTYPES:
        raise Bad(f"{text!r}: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    dims = tuple(int(d) if d.strip().isdigit() else d.strip() for d in shape.split(",")
                 if d.strip())
    if any(isinstance(d, int) and d < 1 for d in dims):
        raise Bad(f"{text!r}: per-row dimensions are numbers >= 1, or names for dynamic "
                  "axes (none: one value per row)")
    bounds = None
    if len(parts) == 4:
        lo, sep, hi = parts[3].partition("..")
        try:
            bounds = (float(lo), float(hi))
        except ValueError:
            sep = ""
        if not sep or bounds is None or bounds[0] > bounds[1]:
            raise Bad(f"{text!r}: range must be LOW..HIGH with LOW <= HIGH")
    return DeclaredInput(name, dtype, dims, bounds)


def check_unique(specs: list[DeclaredInput]) -> None:
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError(f"--input names must differ: {', '.join(names)}")


def ranges(specs: list[DeclaredInput]) -> dict[str, tuple[float, float]]:
    """Card extra ``input_ranges``: the declared ranges."""
    return {s.name: s.bounds for s in specs if s.bounds is not None}


def dummy(specs: list[DeclaredInput], batch: int = 2, length: int = 8,
          seed: int = 0) -> dict[str, np.ndarray]:
    """Trace inputs: each input drawn within its declared dtype and range (ints default to
    0..1, floats to N(0, 1)), dynamic axes ``length`` long."""
    rng = np.random.default_rng(seed)
    out = {}
    for s in specs:
        shape = [batch, *(d if isinstance(d, int) else length for d in s.dims)]
        kind = np.dtype(s.dtype).kind
        if kind in "iub":
            lo, hi = s.bounds or (0, 1)
            value = rng.integers(int(lo), int(hi), size=shape, endpoint=True)
        elif s.bounds is not None:
            value = rng.uniform(*s.bounds, size=shape)
        else:
            value = rng.standard_normal(size=shape)
        out[s.name] = value.astype(s.dtype)
    return out
