"""Figures embedded in the report as base64 PNG: metric distributions and qualitative strips."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def distribution_plots(df: pd.DataFrame, metrics: list[str]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    out = {}
    for m in metrics:
        sub = df[(df["metric"] == m) & np.isfinite(df["value"])]
        if sub.empty:
            continue
        fig, ax = plt.subplots(figsize=(5, 2.6))
        sns.boxplot(data=sub, x="method", y="value", ax=ax, color="#dde6f2", fliersize=0)
        sns.stripplot(data=sub, x="method", y="value", ax=ax, size=3, color="#335", alpha=0.6)
        ax.set_title(m)
        ax.set_xlabel("")
        out[m] = _png(fig)
        plt.close(fig)
    return out


def _phones_at(alignment: Path | None, n: int, fps: float = 25.0) -> list[str]:
    if alignment is None or not Path(alignment).exists():
        return []
    import json

    phones = json.loads(Path(alignment).read_text()).get("phonemes", [])
    labels = []
    for t in range(n):
        time_s = (t + 0.5) / fps
        labels.append(next((p["phone"] for p in phones if p["start"] <= time_s < p["end"]), ""))
    return labels


def qualitative_strip(media: dict[str, Path], frames: int = 8, alignment: Path | None = None) -> str | None:
    """One PNG: a row per method (ground truth first), ``frames`` evenly spaced frames each, with the
    phonemes under the frames when an alignment sidecar exists (as the paper's Fig. 4)."""
    import cv2

    from talkbench.io.video import read_video

    rows, labels = [], []
    idx = None
    for method, path in media.items():
        try:
            v = read_video(path)
        except Exception:
            continue
        if idx is None:
            idx = np.linspace(0, len(v) - 1, min(frames, len(v))).round().astype(int)
        v = v[np.clip(idx, 0, len(v) - 1)]
        rows.append(np.concatenate(list(v), axis=1))
        labels.append(method)
    if not rows:
        return None
    h = rows[0].shape[0]
    pad = 90
    canvas = np.full((h * len(rows) + 24, rows[0].shape[1] + pad, 3), 255, np.uint8)
    for i, (row, label) in enumerate(zip(rows, labels)):
        canvas[i * h : (i + 1) * h, pad : pad + row.shape[1]] = row[:, : canvas.shape[1] - pad]
        cv2.putText(canvas, label, (4, i * h + h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    phones = _phones_at(alignment, int(idx.max()) + 1 if idx is not None else 0)
    if phones:
        w = rows[0].shape[1] // len(idx)
        for j, t in enumerate(idx):
            cv2.putText(canvas, phones[t], (pad + j * w + w // 3, h * len(rows) + 17), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5, (0, 0, 120), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return base64.b64encode(buf.tobytes()).decode() if ok else None
