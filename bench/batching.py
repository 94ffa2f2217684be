"""Batching benchmark: Mailroom's clustering beside two MinHash LSH + connected-components
baselines — datasketch (Python) and rensa (Rust) — in the same run, on the demo office's ground truth.

    python bench/batching.py --corpus demo.jsonl [--sizes 10000 100000] [--out bench/results/batching.json]

The corpus is JSONL with text and label (bench/demo_corpus.py writes one; bench/eval/*.jsonl work
too). Each method runs in a child process of its own so its peak memory is its own. All see exactly
the same normalised text (batching.normalise) and word 3-gram shingles; the baselines use 128
permutations and a Jaccard threshold of 0.5 (rensa: 32 bands of 4, candidates checked at 0.5), and a
component is a batch at the same minimum size. Prints one JSON object and writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batching.cluster import NOT_A_BATCH, ClusterSettings, cluster_texts  # noqa: E402
from batching.evaluate import pairwise_scores  # noqa: E402
from batching.normalise import normalise  # noqa: E402


def _mailroom(texts: list[str]) -> list[int]:
    return cluster_texts(texts).labels


def _datasketch(texts: list[str]) -> list[int]:
    from datasketch import MinHash, MinHashLSH

    cfg = ClusterSettings()
    lsh = MinHashLSH(threshold=0.5, num_perm=128)
    hashes: list[Any | None] = []
    for i, text in enumerate(texts):
        words = normalise(text).split()
        grams = {" ".join(words[j:j + 3]).encode() for j in range(max(0, len(words) - 2))}
        if len(grams) < cfg.min_shingles:
            hashes.append(None)
            continue
        m = MinHash(num_perm=128)
        m.update_batch(list(grams))
        lsh.insert(str(i), m)
        hashes.append(m)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, m in enumerate(hashes):
        if m is None:
            continue
        for key in lsh.query(m):
            a, b = find(i), find(int(key))
            if a != b:
                parent[a] = b
    roots = [find(i) if hashes[i] is not None else None for i in range(len(texts))]
    sizes: dict[int, int] = {}
    for r in roots:
        if r is not None:
            sizes[r] = sizes.get(r, 0) + 1
    numbering: dict[int, int] = {}
    labels = []
    for r in roots:
        if r is None or sizes[r] < cfg.min_batch_size:
            labels.append(NOT_A_BATCH)
        else:
            labels.append(numbering.setdefault(r, len(numbering)))
    return labels


def _components(n: int, edges: list[tuple[int, int]], present: list[bool]) -> list[int]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    roots = [find(i) if present[i] else None for i in range(n)]
    sizes: dict[int, int] = {}
    for r in roots:
        if r is not None:
            sizes[r] = sizes.get(r, 0) + 1
    numbering: dict[int, int] = {}
    return [NOT_A_BATCH if r is None or sizes[r] < ClusterSettings().min_batch_size
            else numbering.setdefault(r, len(numbering)) for r in roots]


def _rensa(texts: list[str]) -> list[int]:
    from rensa import RMinHash, RMinHashLSH

    cfg = ClusterSettings()
    lsh = RMinHashLSH(threshold=0.5, num_perm=128, num_bands=32)
    hashes: list[Any | None] = []  # rensa's RMinHash (the package has no type information)
    for i, text in enumerate(texts):
        words = normalise(text).split()
        grams = [" ".join(words[j:j + 3]) for j in range(max(0, len(words) - 2))]
        if len(set(grams)) < cfg.min_shingles:
            hashes.append(None)
            continue
        m = RMinHash(num_perm=128, seed=42)
        m.update(grams)
        lsh.insert(i, m)
        hashes.append(m)
    edges = [(i, int(j)) for i, m in enumerate(hashes) if m is not None for j in lsh.query(m)
             if int(j) != i and m.jaccard(hashes[int(j)]) >= 0.5]
    return _components(len(texts), edges, [m is not None for m in hashes])


def _run(method: str, texts: list[str], queue: mp.Queue) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    labels = {"mailroom": _mailroom, "datasketch": _datasketch, "rensa": _rensa}[method](texts)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    queue.put((labels, seconds, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def measure(method: str, texts: list[str], truth: list[str | None]) -> dict[str, float]:
    queue: mp.Queue = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=_run, args=(method, texts, queue))
    proc.start()
    labels, seconds, cpu, rss = queue.get()
    proc.join()
    scores = pairwise_scores(truth, labels)
    # CPU seconds too: on a shared machine the wall clock counts other people's work.
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "peak_rss_mb": round(rss, 1),
            "pairwise_f1": scores["pairwise_f1"], "pairwise_precision": scores["pairwise_precision"],
            "pairwise_recall": scores["pairwise_recall"],
            "batches": len({x for x in labels if x >= 0})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "batching.json")
    ap.add_argument("--methods", nargs="+", default=["mailroom", "datasketch", "rensa"])
    ap.add_argument("--baseline-max", type=int, default=None,
                    help="run the baselines only on sizes up to this (at 100,000 datasketch takes over 15 minutes "
                         "and rensa's LSH index over 8 GB)")
    ap.add_argument("--note", default="", help="conditions of the run (load), stored with the figures")
    ap.add_argument("--before", type=Path, default=None,
                    help="a JSON file of an earlier run (the code before a change), stored under 'before'")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.corpus.read_text().splitlines() if line.strip()]
    results: dict[str, object] = {"corpus": str(args.corpus), "note": args.note,
                                  "load_average_at_start": os.getloadavg()[0]}
    for n in args.sizes:
        subset = rows[:n]
        texts = [r["text"] for r in subset]
        truth = [r.get("label") or None for r in subset]
        methods = [m for m in args.methods
                   if m == "mailroom" or args.baseline_max is None or len(subset) <= args.baseline_max]
        runs: dict[str, object] = {method: measure(method, texts, truth) for method in methods}
        if "mailroom" in runs:
            mine = runs["mailroom"]
            assert isinstance(mine, dict)
            for method in list(runs):
                other = runs[method]
                if method != "mailroom" and isinstance(other, dict):
                    runs[f"speedup_vs_{method}"] = round(other["seconds"] / max(mine["seconds"], 1e-9), 1)
                    runs[f"cpu_speedup_vs_{method}"] = round(other["cpu_seconds"] / max(mine["cpu_seconds"], 1e-9), 1)
        results[str(len(subset))] = runs
    if args.before is not None:
        results["before"] = json.loads(args.before.read_text())
    print(json.dumps(results, indent=2))
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
