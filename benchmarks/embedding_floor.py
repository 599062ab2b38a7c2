"""The embedding benchmark's corpus and its in-process floor (no server)."""

from __future__ import annotations

import ast
import random
import re
import sysconfig
import time
from pathlib import Path

import numpy as np


def corpus(seed: int = 17) -> list[str]:
    """Distinct sentences of 5-40 words from the standard library's docstrings."""
    root = Path(sysconfig.get_paths()["stdlib"])
    seen: dict[str, None] = {}
    for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py")):
        if "test" in path.parent.name or "idlelib" in str(path):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef)) and (doc := ast.get_docstring(node)):
                for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", doc)):
                    if 5 <= len(s.split()) <= 40 and re.fullmatch(
                            r"[A-Z][A-Za-z ,;:'()\-]+[.!?]", s):
                        seen.setdefault(s)
    sentences = list(seen)
    random.Random(seed).shuffle(sentences)
    return sentences


class Floor:
    """The same graph and tokenizer in this process, no server."""

    def __init__(self, model: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from functions.config.card import ModelCard
        from functions.config.settings import Settings
        from functions.model.packing import for_card
        from functions.model.sessions import session_options

        self.tok = Tokenizer.from_file(str(model.parent / "minilm.tokenizer.json"))
        self.tok.enable_truncation(256)
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self.session = ort.InferenceSession(str(model), session_options(Settings()),
                                            providers=["CPUExecutionProvider"])
        card = ModelCard.from_json(model.with_name(model.stem + ".card.json").read_bytes())
        self.session = for_card(self.session, card)  # a packed graph: as the function feeds it
        self.names = {i.name for i in self.session.get_inputs()}

    def embed(self, texts: list[str]) -> np.ndarray:
        enc = self.tok.encode_batch(texts)
        feeds = {"input_ids": [e.ids for e in enc], "attention_mask":
                 [e.attention_mask for e in enc], "token_type_ids": [e.type_ids for e in enc]}
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in feeds.items() if k in self.names}
        pooled = self.session.run(None, feeds)[0]
        if pooled.ndim == 3:  # the graph's last hidden state: mean over real tokens
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (pooled * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)

    def rate(self, sentences: list[str], batch: int, seconds: float) -> float:
        """Sentences/s: sorted by token length when batched, tokenizing included."""
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            chunk = sentences[done % len(sentences):][:batch * 64]
            if batch > 1:
                lengths = [sum(e.attention_mask) for e in self.tok.encode_batch(chunk)]
                chunk = [chunk[i] for i in np.argsort(lengths, kind="stable")]
            for lo in range(0, len(chunk), batch):
                self.embed(chunk[lo:lo + batch])
            done += len(chunk)
        return done / (time.perf_counter() - t0)
