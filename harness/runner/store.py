"""results.jsonl: one JSON object per case, appended as each case finishes and flushed
within FLUSH_S, so an interrupted run loses nothing and ``--resume`` can skip what is already
recorded."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

FLUSH_S = 0.2
_ENCODE = json.JSONEncoder(check_circular=False).encode


class ResultStore:
    def __init__(self, out_dir: Path, *, resume: bool) -> None:
        self.path = out_dir / "results.jsonl"
        out_dir.mkdir(parents=True, exist_ok=True)
        self.records: list[dict[str, Any]] = []
        if self.path.exists():
            if resume:
                self.records = self._read_existing()
            else:  # keep the previous run: never overwrite results
                stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.path.stat().st_mtime))
                self.path.rename(out_dir / f"results-{stamp}.jsonl")
        self.done = {(r.get("adapter"), r.get("case")) for r in self.records}
        self._file: TextIO = self.path.open("a", encoding="utf-8")
        self._flushed = time.monotonic()

    def _read_existing(self) -> list[dict[str, Any]]:
        """Records of an earlier run; a torn last line (killed mid-write) is dropped."""
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Keep the record and write it; the file is flushed at most every FLUSH_S (a flush
        per record cost a tenth of a fast run), and always on close, so an interrupted run
        keeps everything and a killed one loses at most FLUSH_S of work (``--resume``)."""
        self.records.append(record)
        self._file.write(_ENCODE(record) + "\n")
        now = time.monotonic()
        if now - self._flushed >= FLUSH_S:
            self._file.flush()
            self._flushed = now

    def close(self) -> None:
        self._file.close()
