"""`import diverseevol` and the numeric core load no heavy optional dependency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

HEAVY = ["torch", "transformers", "peft", "faiss", "openai", "matplotlib", "tqdm", "pandas", "sklearn", "accelerate", "datasets"]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import diverseevol
    from diverseevol import (SelectionContext, get_sampler, kcenter_select, list_samplers,
                             register_sampler, vendi_score)
    from diverseevol.testing import check_sampler

    emb = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32)
    picks = kcenter_select(emb, np.arange(10), 20)
    assert len(picks) == 20
    assert vendi_score(emb[picks]) > 1
    assert vendi_score(emb, q=2, normalize=False) > 1
    names = list_samplers()
    scores = {s: np.linspace(0, 1, 500) for s in ("confidence", "margin", "entropy", "loss")}
    ctx = SelectionContext(pool_idx=np.arange(10), candidate_idx=np.arange(10, 500),
                           embeddings=emb, scores=scores, labels=np.arange(500) % 4,
                           lengths=np.arange(500) % 37)
    for name in names:
        assert len(get_sampler(name).select(ctx, 5)) == 5
    check_sampler(get_sampler("random"))
    print(json.dumps({"heavy": sorted(m for m in HEAVY if m in sys.modules), "samplers": names}))
    """
)


def test_core_imports_no_heavy_modules():
    code = f"HEAVY = {HEAVY!r}\n" + SCRIPT
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        env={**os.environ, "DIVERSEEVOL_PROGRESS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], f"heavy modules imported by the core: {result['heavy']}"
    assert {"entropy", "kcenter", "least_confidence", "margin", "random"} <= set(result["samplers"])
