"""Batching benchmark: Mailroom's clustering beside a datasketch MinHashLSH + connected-components
baseline, in the same run, on the demo office's ground truth.

    python bench/batching.py --corpus demo.jsonl [--sizes 10000 100000]

The corpus is JSONL with text and label (bench/demo_corpus.py writes one). Each method runs in a
child process of its own so its peak memory is its own. Both see exactly the same normalised text
(batching.normalise) and word 3-gram shingles; the baseline uses 128 permutations and a Jaccard
threshold of 0.5, and a component is a batch at the same minimum size. Prints one JSON object and
writes bench/results/batching.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

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
    hashes = []
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


def _run(method: str, texts: list[str], queue: mp.Queue) -> None:
    t0 = time.perf_counter()
    labels = {"mailroom": _mailroom, "datasketch": _datasketch}[method](texts)
    seconds = time.perf_counter() - t0
    queue.put((labels, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def measure(method: str, texts: list[str], truth: list[str | None]) -> dict[str, float]:
    queue: mp.Queue = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=_run, args=(method, texts, queue))
    proc.start()
    labels, seconds, rss = queue.get()
    proc.join()
    scores = pairwise_scores(truth, labels)
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(rss, 1), "pairwise_f1": scores["pairwise_f1"],
            "pairwise_precision": scores["pairwise_precision"], "pairwise_recall": scores["pairwise_recall"],
            "batches": len({x for x in labels if x >= 0})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.corpus.read_text().splitlines() if line.strip()]
    results = {}
    for n in args.sizes:
        subset = rows[:n]
        texts = [r["text"] for r in subset]
        truth = [r.get("label") or None for r in subset]
        mine, base = measure("mailroom", texts, truth), measure("datasketch", texts, truth)
        results[str(len(subset))] = {"mailroom": mine, "datasketch": base,
                                     "speedup": round(base["seconds"] / max(mine["seconds"], 1e-9), 1)}
    print(json.dumps(results, indent=2))
    (Path(__file__).parent / "results" / "batching.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
