"""Read back what the tracking integrations logged: TensorBoard event files, MLflow file stores.

The readers are independent of the writers: TensorBoard's own ``EventAccumulator`` when the
``tensorboard`` package is installed, else a plain TFRecord walk decoding ``Event`` protos with
tensorboardX's copy of the proto; MLflow through ``MlflowClient``.
"""

from __future__ import annotations

import importlib.util
import struct
from collections import defaultdict
from pathlib import Path

import pytest


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def tensorboard_reader_available() -> bool:
    return _installed("tensorboard") or _installed("tensorboardX")


def read_scalars(log_dir: Path, reader: str | None = None) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of the scalar summaries in ``log_dir`` (all event files).

    ``reader``: ``"tensorboard"`` (EventAccumulator), ``"records"`` (TFRecord walk) or None
    (the first available).
    """
    files = sorted(Path(log_dir).glob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file in {log_dir}"
    if reader is None:
        reader = "tensorboard" if _installed("tensorboard") else "records"
    if reader == "tensorboard":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    return _walk_records(files)


def _walk_records(files: list[Path]) -> dict[str, list[tuple[int, float]]]:
    """The TFRecord framing: u64 length, u32 crc, payload, u32 crc; payloads are Event protos."""
    if not _installed("tensorboardX"):
        pytest.skip("reading event files needs tensorboard or tensorboardX")
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for path in files:
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            pos += 12
            event = event_pb2.Event.FromString(data[pos : pos + length])
            pos += length + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out[value.tag].append((event.step, value.simple_value))
    return dict(out)


def read_wandb_offline(run_dir: Path) -> dict:
    """``{"name", "config", "history": [row, ...], "exit_code"}`` of the offline run in ``run_dir/wandb``.

    A ``.wandb`` file is a 7-byte header (``:W&B``, magic, version) followed by the LevelDB log
    format: 32 KiB blocks of chunks (u32 crc, u16 length, u8 type: 1 full, 2 first, 3 middle,
    4 last), each record a ``wandb_internal_pb2.Record``.
    """
    import json

    from wandb.proto import wandb_internal_pb2

    (path,) = sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))
    data, block, pos = path.read_bytes(), 32768, 7
    assert data[:4] == b":W&B", path
    payloads, pending = [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if kind == 0 and length == 0:  # zero padding up to the block end
            pos += left - 7
            continue
        if pos + length > len(data):  # a record still being written
            break
        pending += data[pos : pos + length]
        pos += length
        if kind in (1, 4):
            payloads.append(pending)
            pending = b""
    out: dict = {"history": [], "config": {}, "exit_code": None, "name": None, "bytes": len(data),
                 "records": len(payloads)}
    for payload in payloads:
        record = wandb_internal_pb2.Record.FromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["name"] = record.run.display_name
            out["config"].update({i.key: json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in record.history.item})
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out
