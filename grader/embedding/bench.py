"""Offline throughput: answers graded per second through OfflineScorer vs raw SentenceTransformer.encode.

    python -m grader.embedding.bench [--n 2000] [--repeats 2]

Both sides see the same answer texts (Mohler dev answers, cycled to n) with the same batch size. The
rubric side is warmed first, as it is in any process that grades more than one answer per question.
"""

from __future__ import annotations

import argparse
import time

from grader.config import Settings


def _answers(n: int):
    from grader.embedding.crossval import read_graded_jsonl, rubrics_for
    from grader.paths import mohler_dev

    data = read_graded_jsonl(mohler_dev())
    rubrics = rubrics_for([q for q, *_ in data])
    pairs = [(rubrics[q.id], a) for q, a, _, _ in data]
    return [pairs[i % len(pairs)] for i in range(n)]


def offline_throughput(n: int = 2000, repeats: int = 3, settings: Settings | None = None) -> dict:
    """Best-of-``repeats`` answers/s for raw encode and for full offline scoring, and their ratio."""
    from grader.embedding.scorer import OfflineScorer

    settings = settings or Settings()
    scorer = OfflineScorer(settings)
    pairs = _answers(n)
    texts = [a.strip() for _, a in pairs]
    from sentence_transformers import SentenceTransformer

    from grader.embedding.encoder import bundled_model_path

    # The baseline is the library itself, whatever runtime the scorer's encoder uses.
    model = SentenceTransformer(settings.embedding.model or str(bundled_model_path()), device="cpu")
    bs = settings.embedding.batch_size
    # Warm-up: the model's first batches and every rubric's cached encodings.
    model.encode(texts[:bs], batch_size=bs, show_progress_bar=False)
    scorer.score_many(list({id(r): (r, a) for r, a in pairs}.values()))
    raw, full, raw_cpu, full_cpu = [], [], [], []
    for _ in range(repeats):
        # Interleaved, best of each: on a shared machine the quietest run is the closest to the truth.
        t, c = time.perf_counter(), time.process_time()
        model.encode(texts, batch_size=bs, normalize_embeddings=True, show_progress_bar=False)
        raw.append(time.perf_counter() - t)
        raw_cpu.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        scorer.score_many(pairs)
        full.append(time.perf_counter() - t)
        full_cpu.append(time.process_time() - c)
    raw_rate = n / min(raw)
    full_rate = n / min(full)
    return {
        "n": n,
        "repeats": repeats,
        "batch_size": bs,
        "model": scorer.model_name,
        "raw_encode_per_s": round(raw_rate, 1),
        "offline_graded_per_s": round(full_rate, 1),
        "ratio": round(full_rate / raw_rate, 3),
        "raw_seconds": round(min(raw), 2),
        "offline_seconds": round(min(full), 2),
        # CPU seconds are not inflated by other processes on a shared machine.
        "raw_cpu_seconds": round(min(raw_cpu), 2),
        "offline_cpu_seconds": round(min(full_cpu), 2),
        "cpu_ratio": round(min(raw_cpu) / min(full_cpu), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m grader.embedding.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    r = offline_throughput(args.n, args.repeats)
    print(f"answers: {r['n']} (batch size {r['batch_size']}, model {r['model']}, best of {r['repeats']})")
    print(f"  raw SentenceTransformer.encode   {r['raw_encode_per_s']:8.1f} answers/s ({r['raw_seconds']} s)")
    print(f"  OfflineScorer.score_many         {r['offline_graded_per_s']:8.1f} answers/s ({r['offline_seconds']} s)")
    print(f"  ratio (offline / raw)            {r['ratio']:8.3f}   target >= 0.8")
    print(f"  CPU seconds: raw {r['raw_cpu_seconds']} s, offline {r['offline_cpu_seconds']} s, "
          f"ratio {r['cpu_ratio']:.3f} (not skewed by other load)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
