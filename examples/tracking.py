"""Experiment tracking: the loop's per-round metrics in TensorBoard (and MLflow when installed).

Runs a small loop with fixed embeddings (no model, no GPU) and reads the logged Vendi scores back.

    python examples/tracking.py
    tensorboard --logdir runs/tracking-example     # to look at the curves
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np

from diverseevol import EvolutionLoop, InstructionRecord


def main() -> None:
    rng = np.random.default_rng(0)
    records = [InstructionRecord(f"task {i}", "", f"answer {i}") for i in range(300)]
    features = rng.normal(size=(300, 16)).astype(np.float32)
    run_dir = Path("runs/tracking-example")

    report_to = ["tensorboard"]
    if importlib.util.find_spec("mlflow") is not None:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3: opt in to a folder store
        os.environ.setdefault("MLFLOW_TRACKING_URI", Path(tempfile.mkdtemp(prefix="mlruns-")).as_uri())
        report_to.append("mlflow")

    loop = EvolutionLoop(
        records,
        trainer=lambda recs, t, out: t,                 # no training: the view of the data is fixed
        embedder=lambda model, recs: features,
        sampler="kcenter",
        sampler_params={"metric": "cosine"},
        init_size=20,
        k=20,
        rounds=5,
        run_dir=run_dir,
        overwrite=True,
        progress=False,
        report_to=report_to,
    )
    result = loop.run()
    print("vendi per round (run directory):", [round(row["vendi"], 2) for row in result.metrics])

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    print("vendi per round (TensorBoard):  ", [round(e.value, 2) for e in acc.Scalars("vendi")])
    if "mlflow" in report_to:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        experiment = client.get_experiment_by_name("Default")
        (run,) = client.search_runs([experiment.experiment_id])
        history = client.get_metric_history(run.info.run_id, "vendi")
        print("vendi per round (MLflow):       ", [round(m.value, 2) for m in history])


if __name__ == "__main__":
    main()
