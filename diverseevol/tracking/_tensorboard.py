"""TensorBoard: each round's metrics as scalars, read back from the callback's own event files on resume."""

from __future__ import annotations

import json
import os
import re
import struct
import uuid
from pathlib import Path
from typing import Any

from .._optional import is_available
from ..errors import OptionalDependencyError
from ._base import _INSTALL, Held, TrackingCallback, _check_writable, _import

_TAG_UNSAFE = re.compile(r"[^-/\w.]")  # what TensorBoard writers replace in tags
_EVENT_GLOB = "events.out.tfevents.*"


class TensorBoardCallback(TrackingCallback):
    """Write each round's metrics as TensorBoard scalars (tag = metric name, step = round).

    The writer is ``torch.utils.tensorboard.SummaryWriter`` when torch and tensorboard are
    installed, else ``tensorboardX.SummaryWriter`` (as in transformers). The run's configuration
    is written once as the text summary ``"config"``. Each loop run writes a new event file whose
    name carries the run directory's identity; a resumed run reads the earlier ones back and writes
    only the scalars they lack (a record cut by ``kill -9`` at the end of a file is cut off first).

    Parameters
    ----------
    log_dir : str or Path, optional
        Where the event files go; default ``<run_dir>/tensorboard`` (``tensorboard --logdir
        <run_dir>`` then also shows the trainer's logs written below it).
    run_name : str, optional
        Unused by TensorBoard beyond the directory; kept for a uniform signature.
    writer_factory : callable, optional
        ``writer_factory(log_dir) -> writer`` with ``add_scalar``, ``add_text``, ``flush`` and
        ``close``; default: the SummaryWriter described above. What such a writer wrote cannot be
        read back, so every loop run logs every round to it.
    """

    integration = "tensorboard"

    def __init__(
        self, log_dir: str | Path | None = None, *, run_name: str | None = None, writer_factory: Any = None
    ) -> None:
        super().__init__(run_name)
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.writer_factory = writer_factory
        self.writer: Any = None
        self._config_written = False

    def _dir(self, run_dir: Path) -> Path:
        return self.log_dir if self.log_dir is not None else run_dir / "tensorboard"

    def check(self, run_dir: Path) -> None:
        """The writer imports and the log directory is writable."""
        if self.writer_factory is None:
            _summary_writer_class()
        _check_writable(self._dir(run_dir), self.integration)

    def _name(self, key: str) -> str:
        return _TAG_UNSAFE.sub("_", key).lstrip("/")

    def _read_held(self, run_dir: Path, name: str, config: dict[str, Any], key: str) -> Held:
        self._config_written = False
        held: Held = {}
        if self.writer_factory is not None:
            return held
        files = sorted(self._dir(run_dir).glob(f"{_EVENT_GLOB}.diverseevol-{key}.*"))
        for path in files:
            for step, tag, scalar in _read_events(path):
                if scalar:
                    held.setdefault(step, set()).add(tag)
                elif tag == "config":
                    self._config_written = True
        return held

    def _open(self, run_dir: Path, name: str, config: dict[str, Any], key: str = "") -> None:
        log_dir = self._dir(run_dir)
        if self.writer_factory is not None:
            self.writer = self.writer_factory(str(log_dir))
        else:
            # tensorboardX names event files by the second: the unique suffix keeps a resume within the same
            # second from replacing the killed run's file; the run key lets a resume find its own files.
            suffix = f".diverseevol-{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            self.writer = _summary_writer_class()(str(log_dir), filename_suffix=suffix)
        if not self._config_written:
            self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```", 0)
            self._config_written = True
        self.writer.flush()

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(self._name(key), value, step)
        self.writer.flush()  # a crash loses nothing already logged

    def _close(self, error: BaseException | None) -> None:
        self.writer.close()
        self.writer = None


def _summary_writer_class() -> Any:
    """torch's SummaryWriter (needs tensorboard), else tensorboardX's."""
    if is_available("torch") and is_available("tensorboard"):
        try:
            from torch.utils.tensorboard import SummaryWriter

            return SummaryWriter
        except ImportError:
            pass
    if is_available("tensorboardX"):
        return _import("tensorboardX", "tensorboard").SummaryWriter
    raise OptionalDependencyError(
        "report_to='tensorboard' needs a TensorBoard writer: torch with the tensorboard package, or "
        f"tensorboardX. Install one with: {_INSTALL['tensorboard']}"
    )


def _event_proto() -> Any:
    """The ``Event`` protobuf class of whichever TensorBoard writer package is installed."""
    for module in ("tensorboardX.proto.event_pb2", "tensorboard.compat.proto.event_pb2"):
        if is_available(module.split(".")[0]):
            return _import(module, "tensorboard").Event
    raise OptionalDependencyError(
        f"report_to='tensorboard' cannot read its event files without tensorboardX or tensorboard. "
        f"Install one with: {_INSTALL['tensorboard']}"
    )


def _read_events(path: Path) -> list[tuple[int, str, bool]]:
    """``(step, tag, is_scalar)`` of every summary value of the event file ``path``.

    The file is a sequence of TFRecords (u64 length, u32 CRC, payload, u32 CRC). A record cut
    short by a killed writer can only be the last one: the file is truncated to the records
    before it, so that every reader sees a well-formed file.
    """
    event_class = _event_proto()
    data = path.read_bytes()
    out: list[tuple[int, str, bool]] = []
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            break
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        end = pos + 12 + length + 4
        if end > len(data):
            break
        event = event_class.FromString(data[pos + 12 : pos + 12 + length])
        for value in event.summary.value:
            out.append((int(event.step), value.tag, value.HasField("simple_value")))
        pos = end
    if pos < len(data):
        os.truncate(path, pos)
    return out
