"""Rebuild the paper's Table 1 and Figure 2 from DiverseEvol's recorded GPT-4 judgments.

Reads ``shared/data/judge_reference/davinci.jsonl.gz`` (21,510 records: 4 samplers x 11 rounds
+ a full-data baseline, on Vicuna, Koala and WizardLM), parses every judge reply with
``parse_scores``, computes RS and WTR per run and round, and writes a report (table.md,
table.csv, rs_vs_pool.png, wtr_vs_pool.png) with ``diverseevol.report``.

Run:  python examples/report_recorded_judgments.py [OUT_DIR]
(The data folder is found beside the checkout, or through DIVERSEEVOL_SHARED_DATA.)
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from diverseevol.judge import parse_scores, relative_score, win_tie_rate
from diverseevol.report import RunMetrics, write_report

REFERENCE = "gpt/gpt35_0624"  # DiverseEvol's name for the ChatGPT answers
SAMPLERS = {"kc": "kcenter", "rand": "random", "lc": "least_confidence", "ms": "margin"}


def data_file() -> Path:
    root = os.environ.get("DIVERSEEVOL_SHARED_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / "judge_reference" / "davinci.jsonl.gz"


def main(out_dir: str = "recorded_report") -> None:
    path = data_file()
    if not path.is_file():
        sys.exit(f"recorded judgments not found at {path}; set DIVERSEEVOL_SHARED_DATA")
    scores: dict[tuple[str, int, str], list[list[list[float]]]] = defaultdict(list)
    n_invalid = 0
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            pair = []
            for order in ("order0", "order1"):
                parsed = parse_scores(rec[order]["judge_output"])
                if parsed is None:
                    n_invalid += 1
                    pair.append([np.nan, np.nan])
                    continue
                first, second = parsed
                model_first = rec[order]["assistant2"] == REFERENCE
                pair.append([first, second] if model_first else [second, first])  # (model, reference)
            scores[(rec["run"], rec["round"], rec["testset"])].append(pair)
    rows: dict[str, dict[int, dict]] = defaultdict(dict)
    for (run, rd, testset), pairs in scores.items():
        arr = np.asarray(pairs)  # (n_questions, 2 orders, [model, reference])
        row = rows[run].setdefault(rd, {"round": rd, "pool_size": 52_002 if run.startswith("baseline") else 100 * (rd + 1)})
        row[f"{testset}/rs"] = relative_score(arr[..., 0], arr[..., 1], nan_policy="omit")
        row[f"{testset}/wtr"] = win_tie_rate(arr[..., 0], arr[..., 1], nan_policy="omit")
    runs = []
    for run, by_round in sorted(rows.items()):
        label = "full data (52k)" if run.startswith("baseline") else SAMPLERS[run.split("_")[0]]
        runs.append(RunMetrics.from_rows([by_round[r] for r in sorted(by_round)], sampler=label, name=run))
    written = write_report(runs, out_dir)
    print(f"{sum(len(v) for v in scores.values())} questions judged, {n_invalid} invalid replies")
    print(written["table"].read_text())
    for kind, p in written.items():
        print(f"{kind:>18}: {p}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
