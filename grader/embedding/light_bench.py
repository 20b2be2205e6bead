"""Cold-process cost of each way to load the bundled model and encode one sentence, printed as JSON.

    python -m grader.embedding.light_bench --runs 3

Each option runs in a fresh interpreter (so imports are cold), ``runs`` times; the figures are wall and
CPU (user + sys) seconds, median and minimum. CPU time is the steadier figure on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

_ENCODE = "['Pruning removes the least important weights from a network.']"

OPTIONS: dict[str, str] = {
    "import_torch_only": "import torch",
    "light_model": (
        "from grader.embedding.light_model import load_light_model\n"
        "m = load_light_model(PATH)\n"
        f"m.encode({_ENCODE}, normalize_embeddings=True)"
    ),
    "transformers_modeling_bert_direct": (
        "import torch\n"
        "from transformers.models.bert.modeling_bert import BertModel\n"
        "from transformers.models.bert.tokenization_bert import BertTokenizer\n"
        "m = BertModel.from_pretrained(PATH); t = BertTokenizer.from_pretrained(PATH)\n"
        f"with torch.inference_mode(): m(**t({_ENCODE}, return_tensors='pt'))"
    ),
    "transformers_auto": (
        "import torch\n"
        "from transformers import AutoModel, AutoTokenizer\n"
        "m = AutoModel.from_pretrained(PATH); t = AutoTokenizer.from_pretrained(PATH)\n"
        f"with torch.inference_mode(): m(**t({_ENCODE}, return_tensors='pt'))"
    ),
    "sentence_transformers": (
        "from sentence_transformers import SentenceTransformer\n"
        "m = SentenceTransformer(PATH, device='cpu', local_files_only=True)\n"
        f"m.encode({_ENCODE}, normalize_embeddings=True, show_progress_bar=False)"
    ),
}


def _run(code: str) -> tuple[float, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(runs: int = 3, options: list[str] | None = None) -> dict[str, dict[str, float]]:
    from grader.embedding.encoder import bundled_model_path

    path = repr(str(bundled_model_path()))
    names = options or list(OPTIONS)
    results: dict[str, dict[str, float]] = {}
    samples: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for _ in range(runs):  # interleaved, so a burst of load on the machine hits every option alike
        for name in names:
            samples[name].append(_run(f"PATH = {path}\n" + OPTIONS[name]))
    for name in names:
        walls, cpus = [s[0] for s in samples[name]], [s[1] for s in samples[name]]
        results[name] = {
            "wall_s_median": round(statistics.median(walls), 3),
            "wall_s_min": round(min(walls), 3),
            "cpu_s_median": round(statistics.median(cpus), 3),
            "cpu_s_min": round(min(cpus), 3),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=list(OPTIONS))
    args = parser.parse_args()
    print(json.dumps({"benchmark": "embedding-model cold load + 1 encode", "runs": args.runs,
                      "cpu_count": os.cpu_count(), "options": measure(args.runs, args.only)}, indent=2))


if __name__ == "__main__":
    main()
