"""How a merge's calls should use two vCPUs: the model alone, no server.

    .venv/bin/python -m benchmarks.cut_threads [--seconds 6] [--rounds 3] [--merge 16] \
        [--call-tokens 22] [--max-waste 0.3] [--packed]

all-MiniLM-L6-v2 (embedding_bench's export, the graph it serves; built on first use) on the
corpus of embedding_bench, shuffled and taken ``--merge`` sentences at a time (16: what 16
connections put in a merge when every request waits for it; with the lanes a merge holds
what queued while a lane ran, about half that), tokenized beforehand, each merge cut by
length as the batcher cuts it (functions.model.cuts, the default budget; ``--call-tokens``
and ``--max-waste`` set its cut rule: 22 padded tokens a call, what the server measures
for this model, and 30% padding). Each way of running the cuts runs in turn for
``--seconds`` (rounds alternate the order); sentences/s:

- ``serial2``: one call at a time on a session with 2 intra-op threads (before CALLS_AT_ONCE);
- ``pair2``: two calls at once on that session (CALLS_AT_ONCE=2, the default);
- ``pair1``: two calls at once on a session with 1 intra-op thread;
- ``serial1``: one call at a time on that session;
- ``sorted32``: the whole corpus sorted by length in calls of 32 (taken in random order),
  one at a time on the 2-thread session: the floor's calls, tokens computed beforehand;
- ``floor``: embedding_bench's floor itself (``Floor.rate``: sorted batches of 32 on the
  2-thread session, tokenizing included), the figure its "x sorted floor" divides by.

- with ``--packed``, the ``hf --packed`` export through the function's adapter
  (functions.model.packing): ``packed1``, the merges cut by real tokens as the batcher cuts
  a packed model's, two calls at once on 1-thread sessions; ``packed32``, the floor's
  batches of 32 packed on the 2-thread session.

Each way is also reported against ``floor``: ``pair1`` over it is what two lanes could do
with merges of that size and nothing else on the CPUs (no HTTP, no tokenizing, no answers),
a ceiling for the served 16-connection figure of issue 24.

The sessions use the server's options (functions.model.sessions) but for the thread count.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np

from benchmarks.embedding_bench import exported
from benchmarks.embedding_floor import Floor, corpus
from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.model.cuts import MAX_WASTE, Budget, cut_by_length
from functions.model.packing import CALL_TOKENS, for_card
from functions.model.sessions import session_options

Feeds = dict[str, np.ndarray]


def merges(tokenizer: object, sentences: list[str], size: int = 16, floor: bool = False,
           call_tokens: float = 22.0, max_waste: float = MAX_WASTE,
           packed: bool = False) -> list[list[Feeds]]:
    """Merges of ``size`` shuffled sentences, each cut into its calls' feeds by the rule of
    ``call_tokens`` and ``max_waste``; with ``floor``, one merge of them all in calls of 32
    by length."""
    order = np.random.default_rng(1).permutation(len(sentences))
    budget = Budget(tokens=1 << 20, input_bytes=1 << 30, max_rows=64, call_tokens=call_tokens,
                    max_waste=max_waste, pack_tokens=CALL_TOKENS if packed else None)
    out = []
    if floor:  # one merge: cut_by_length sorts it and cuts 32 rows a call
        budget = Budget(tokens=1 << 20, input_bytes=1 << 30, max_rows=32, max_waste=1.0)
        size = len(order)
    for lo in range(0, len(order) - size + 1, size):
        enc = tokenizer.encode_batch([sentences[i] for i in order[lo:lo + size]])  # type: ignore[attr-defined]
        feeds = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                 "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}
        lengths = feeds["attention_mask"].sum(axis=1)
        out.append([{k: np.ascontiguousarray(v[idx, :int(lengths[idx].max())])
                     for k, v in feeds.items()} for idx in cut_by_length(lengths, budget)])
    if floor:  # calls in random order: ``rate`` stops after its seconds, wherever it is
        out = [[out[0][k] for k in np.random.default_rng(2).permutation(len(out[0]))]]
    return out


def rate(session: object, work: list[list[Feeds]], threads: int, seconds: float) -> float:
    """Sentences/s with ``threads`` threads taking whole merges' calls, one call each."""
    calls = [f for merge in work for f in merge]
    lock, state = threading.Lock(), {"next": 0, "rows": 0}
    stop = time.perf_counter() + seconds

    def worker() -> None:
        while time.perf_counter() < stop:
            with lock:
                feeds = calls[state["next"] % len(calls)]
                state["next"] += 1
            session.run(None, feeds)  # type: ignore[attr-defined]
            with lock:
                state["rows"] += len(feeds["input_ids"])

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return state["rows"] / (time.perf_counter() - started)


def main() -> None:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--merge", type=int, default=16, help="sentences a merge")
    parser.add_argument("--call-tokens", type=float, default=22.0,
                        help="the cut rule's cost of a call, in padded tokens")
    parser.add_argument("--max-waste", type=float, default=MAX_WASTE,
                        help="the cut rule's padding bound (1: none)")
    parser.add_argument("--packed", action="store_true",
                        help="also the hf --packed export: packed1 (two at once, cut by "
                        "tokens) and packed32 (batches of 32), fed as the function feeds it")
    args = parser.parse_args()
    model = exported(False)
    tokenizer = Tokenizer.from_file(str(model.parent / "minilm.tokenizer.json"))
    tokenizer.enable_truncation(256)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    sentences = corpus()
    work = merges(tokenizer, sentences, args.merge, call_tokens=args.call_tokens,
                  max_waste=args.max_waste)
    floor = merges(tokenizer, sentences, floor=True)
    served_floor = Floor(model)
    print(f"{len(work)} merges of {args.merge}, {sum(map(len, work)) / len(work):.2f} calls "
          "each")

    def session(threads: int, path: object = model) -> object:
        options = session_options(Settings())
        options.intra_op_num_threads = threads
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    sessions: dict[object, object] = {1: session(1), 2: session(2)}
    ways = {"serial2": (2, 1), "pair2": (2, 2), "pair1": (1, 2), "serial1": (1, 1),
            "sorted32": (2, 1), "floor": (2, 1)}
    packed_work: list[list[Feeds]] = []
    if args.packed:  # the packed graph behind the padded signature, as the function runs it
        packed_model = exported(False, packed=True)
        card = ModelCard.from_json(packed_model.with_suffix(".card.json").read_bytes())
        for threads in (1, 2):
            sessions[f"p{threads}"] = for_card(session(threads, packed_model), card)
        packed_work = merges(tokenizer, sentences, args.merge, packed=True)
        ways.update({"packed1": ("p1", 2), "packed32": ("p2", 1)})
    for intra in sessions:  # warm-up
        rate(sessions[intra], work[:8], 1, 0.5)
    pick = {"sorted32": floor, "packed32": floor, "packed1": packed_work}
    rates: dict[str, list[float]] = {w: [] for w in ways}
    for r in range(args.rounds):
        for way in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
            intra, threads = ways[way]
            rates[way].append(served_floor.rate(sentences, 32, args.seconds) if way == "floor"
                              else rate(sessions[intra], pick.get(way, work), threads,
                                        args.seconds))
    for way, got in rates.items():
        ratios = [a / b for a, b in zip(got, rates["serial2"])]
        floors = [a / b for a, b in zip(got, rates["floor"])]
        print(f"{way:8s} {statistics.median(got):6.0f} sentences/s, "
              f"{statistics.median(ratios):.2f}x serial2, {statistics.median(floors):.2f}x "
              f"floor (rounds: {', '.join(f'{g:.0f}' for g in got)})")


if __name__ == "__main__":
    main()
