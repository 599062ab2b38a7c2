"""Loading a PyTorch model in any of the three forms ``model_export torch`` accepts.

- an import path ``pkg.module:Class`` (or ``path/to/file.py:Class``) with keyword
  arguments, plus a state dict file (``torch.save(model.state_dict(), f)``),
- a TorchScript file (``torch.jit.save``),
- an ExportedProgram file (``torch.export.save``, conventionally ``.pt2``).

State dicts are read with ``weights_only=True``: no pickled code runs. A whole pickled
``nn.Module`` is refused (it is code, and breaks when the class moves): save its state dict.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_export.exit_codes import InputError, NotAModel


@dataclass
class LoadedModule:
    """The module ready to run, and which form it came from."""

    module: Any  # torch.nn.Module (or ScriptModule / unlifted ExportedProgram module)
    kind: str  # "state_dict" | "torchscript" | "exported_program" | "fresh"
    example_shape: tuple[int, ...] | None = None


def import_object(spec: str) -> Any:
    """``pkg.mod:Name`` or ``file.py:Name`` -> the object; InputError when it is not there."""
    target, _, attr = spec.partition(":")
    if not attr:
        raise InputError(f"--module {spec!r}: expected 'package.module:Class' or 'file.py:Class'")
    try:
        if target.endswith(".py"):
            path = Path(target).resolve()
            loader = importlib.util.spec_from_file_location(path.stem, path)
            if loader is None or not path.is_file():
                raise ImportError(f"no such file {target}")
            mod = importlib.util.module_from_spec(loader)
            sys.modules[path.stem] = mod
            loader.loader.exec_module(mod)  # type: ignore[union-attr]
        else:
            mod = importlib.import_module(target)
        return getattr(mod, attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"--module {spec!r} cannot be imported: {exc}") from exc


def load(source: Path | None, module_spec: str | None,
         kwargs: dict[str, Any] | None = None) -> LoadedModule:
    """Load the model (see module docstring); NotAModel when the file is none of them."""
    import torch

    if source is not None and not source.is_file():
        raise InputError(f"{source}: no such file")
    if module_spec:
        module = import_object(module_spec)(**(kwargs or {}))
        if source is None:
            return LoadedModule(module, "fresh")
        try:
            module.load_state_dict(_state_dict(source, module_spec))
        except RuntimeError as exc:  # missing / unexpected keys, shape mismatches
            raise NotAModel(f"{source} does not fit {module_spec}: {exc}") from exc
        return LoadedModule(module, "state_dict")
    if source is None:
        raise InputError("give a model file, or --module with its state dict")
    if source.suffix == ".pt2":
        try:
            program = torch.export.load(str(source))
        except Exception as exc:  # torch raises several types for a bad archive
            raise NotAModel(f"{source} is not a torch.export ExportedProgram: {exc}") from exc
        example = tuple(program.example_inputs[0][0].shape[1:])
        return LoadedModule(program.module(), "exported_program", example)
    try:
        return LoadedModule(torch.jit.load(str(source), map_location="cpu"), "torchscript")
    except Exception as exc:  # RuntimeError for zips that are not TorchScript, others for junk
        if _is_state_dict(source):
            raise InputError(f"{source} is a state dict: pass --module package.module:Class "
                             "(and --module-kwargs) to build the module it belongs to") from exc
        raise NotAModel(f"{source} is not a PyTorch model (TorchScript, ExportedProgram, "
                        f"or state dict with --module): {exc}") from exc


def _state_dict(source: Path, module_spec: str) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(str(source), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, "weights only" refusals
        raise NotAModel(f"{source} is not a PyTorch state dict: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise NotAModel(f"{source} holds a {type(state).__name__}, not a state dict "
                        f"for {module_spec}")
    return state


def _is_state_dict(source: Path) -> bool:
    import torch

    try:
        return isinstance(torch.load(str(source), map_location="cpu", weights_only=True), dict)
    except Exception:  # anything unreadable is simply not a state dict
        return False


def guess_row_shape(loaded: LoadedModule) -> tuple[int, ...] | None:
    """Per-row input shape: the ExportedProgram's example, else the first 2-D weight's
    ``in_features``; None when neither tells."""
    if loaded.example_shape:
        return loaded.example_shape
    for param in loaded.module.parameters():
        if param.dim() == 2:
            return (int(param.shape[1]),)
    return None
