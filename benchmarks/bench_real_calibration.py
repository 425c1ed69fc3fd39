"""Calibration on real count series: share of quiet windows at or above score thresholds.

    python -m benchmarks.bench_real_calibration [--data ../shared/data/real-counts]

Each labelled series (NAB v1.1 files, evaluation data kept outside the repository) is replayed
with ``replay_series`` at the default configuration. Quiet windows: outside every labelled
window, after the first 15 %. For thresholds 2, 3, 4, 6: the share of quiet windows whose raw
one-window model score reaches it, and the share whose calibrated score (the one the policy
uses: max over the one-window and 3/10/30-window paths) does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import save
from spikedetect.core import DetectorConfig, evidence
from spikedetect.core.scorer import ClosedKeys
from spikedetect.replay.series import infer_window_ms, read_series, replay_series

THRESHOLDS = (2, 3, 4, 6)


def _ms(text: str) -> float:
    return dt.datetime.fromisoformat(text[:19]).replace(tzinfo=dt.UTC).timestamp() * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/real-counts")
    args = ap.parse_args()
    root = Path(args.data)
    labels = json.loads((root / "windows.json").read_text())
    last_raw = [0.0]
    calibrate = evidence.calibrate

    def spy(cols: Any, n: int, raw: np.ndarray, *rest: Any) -> np.ndarray:
        last_raw[0] = float(raw[0, 0])
        return calibrate(cols, n, raw, *rest)

    evidence.calibrate = spy  # type: ignore[assignment]
    results = {}
    print(f"{'series':40s} {'raw one-window >= 2/3/4/6':34s} calibrated, all paths >= 2/3/4/6")
    for rel in sorted(labels):
        with open(root / rel, encoding="utf-8") as f:
            data = read_series(f)
        raws: list[float] = []
        scores: list[float] = []
        times: list[int] = []

        def hook(ws: int, ck: ClosedKeys, raws: list[float] = raws, scores: list[float] = scores,
                 times: list[int] = times) -> None:
            raws.append(last_raw[0])
            scores.append(float(ck.score[0]))
            times.append(ws)

        replay_series(data, DetectorConfig(window_ms=infer_window_ms(data.rows)), on_window=hook)
        t = np.array(times, dtype=np.float64)
        quiet = np.ones(len(t), dtype=bool)
        for a, b in labels[rel]:
            quiet &= ~((t >= _ms(a)) & (t <= _ms(b)))
        quiet[: int(0.15 * len(t))] = False
        r, s = np.array(raws)[quiet], np.array(scores)[quiet]
        raw_share = [float((r >= k).mean()) for k in THRESHOLDS]
        cal_share = [float((s >= k).mean()) for k in THRESHOLDS]
        results[rel] = {"raw": raw_share, "calibrated": cal_share}
        print(f"{rel.split('/')[-1]:40s} {'/'.join(f'{v:.4f}' for v in raw_share):34s} "
              f"{'/'.join(f'{v:.4f}' for v in cal_share)}")
    print("saved", save("real-calibration", {"args": vars(args), "results": results}))


if __name__ == "__main__":
    main()
