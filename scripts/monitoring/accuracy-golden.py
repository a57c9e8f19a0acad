"""Writes src/monitoring/fixtures/accuracy-golden.json: a prediction log and a labels topic (labels
on time, late, twice with a different value, never; bad labels), and what scikit-learn / pandas
say about each window of each version after joining them.

test/monitoring/accuracy-monitor.test.ts produces these records on a real broker and holds the
live-accuracy monitor's reports to these values (1e-9). The join is done here in pandas, by the
rules of src/monitoring/label-join.ts: same id, label time − prediction time in [0, labelWindowMs],
the first such label per id. Regenerate (deterministic: fixed seed) with
    python3 -m venv /tmp/v && /tmp/v/bin/pip install -r scripts/monitoring/requirements.txt
    /tmp/v/bin/python scripts/monitoring/accuracy-golden.py
"""
import json
import pathlib

import numpy as np
import pandas as pd
from sklearn import metrics

WINDOW_MS = 10_000
LABEL_WINDOW_MS = 20_000
GRACE_MS = 1_000
rng = np.random.default_rng(18)


def scenario(task):
    preds, labels = [], []
    n = 300
    for i in range(n):
        ts = i * 50  # 300 predictions over 15 s: windows [0, 10 s) and [10 s, 20 s)
        version = 2 if i % 3 == 0 else 1
        if task == "classification":
            actual = int(rng.integers(0, 3))
            # Version 1 is right 80 % of the time, version 2 55 %.
            right = rng.random() < (0.8 if version == 1 else 0.55)
            predicted = actual if right else int((actual + rng.integers(1, 3)) % 3)
            p = rng.dirichlet([1, 1, 1])
            p = np.roll(np.sort(p), predicted - 2)  # the largest probability on the predicted class
            p = (p / p.sum()).tolist()
            outputs = {"label": [predicted], "probabilities": p}
        else:
            actual = float(np.round(rng.normal(50, 10), 3))
            predicted = float(np.round(actual + rng.normal(0, 2 if version == 1 else 6), 3))
            outputs = {"value": [predicted]}
        preds.append({"id": f"id-{i}", "version": version, "ts": ts, "outputs": outputs})
        fate = rng.random()
        delay = int(rng.integers(0, 15_000))
        if fate < 0.1:
            continue  # never labelled
        if fate < 0.2:
            labels.append({"id": f"id-{i}", "ts": ts + LABEL_WINDOW_MS + 5_000, "label": actual})  # late
            continue
        labels.append({"id": f"id-{i}", "ts": ts + delay, "label": actual})
        if fate < 0.3:
            # Twice: a second, different label a little later does not count.
            other = (actual + 1) % 3 if task == "classification" else actual + 100.0
            labels.append({"id": f"id-{i}", "ts": ts + delay + 100, "label": other})
    # Sentinels far ahead on both sides close both windows (they open a window of their own).
    end = 20_000 + LABEL_WINDOW_MS + GRACE_MS + 10_000
    preds.append({"id": "sentinel", "version": 1, "ts": end, "outputs": preds[1]["outputs"]})
    labels.append({"id": "sentinel", "ts": end + 1, "label": labels[0]["label"]})

    p = pd.DataFrame(preds)
    lab = pd.DataFrame(labels).reset_index(names="seq")
    j = p.merge(lab, on="id", suffixes=("_p", "_l"))
    j = j[(j.ts_l - j.ts_p >= 0) & (j.ts_l - j.ts_p <= LABEL_WINDOW_MS)].sort_values("seq").drop_duplicates("id")
    p["window"] = p.ts // WINDOW_MS * WINDOW_MS
    expected = []
    for (version, window), g in p[p.id != "sentinel"].groupby(["version", "window"]):
        m = j[j.id.isin(g.id)]
        e = {
            "version": int(version),
            "windowStart": int(window),
            "predictions": len(g),
            "labelled": len(m),
            "unlabelledShare": 1 - len(m) / len(g),
        }
        d = (m.ts_l - m.ts_p).to_numpy(dtype=float)
        e["labelDelayMs"] = {"mean": float(d.mean()), "p50": float(np.quantile(d, 0.5)), "p95": float(np.quantile(d, 0.95)), "max": float(d.max())}
        if task == "classification":
            y_true = m.label.astype(int).to_numpy()
            y_pred = np.array([o["label"][0] for o in m.outputs])
            classes = sorted(set(y_true) | set(y_pred))
            prec, rec, f1, sup = metrics.precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
            e["accuracy"] = metrics.accuracy_score(y_true, y_pred)
            e["classes"] = [
                {"class": int(c), "precision": float(a), "recall": float(b), "f1": float(f), "support": int(s)}
                for c, a, b, f, s in zip(classes, prec, rec, f1, sup)
            ]
            e["confusion"] = {"labels": [int(c) for c in classes], "matrix": metrics.confusion_matrix(y_true, y_pred, labels=classes).tolist()}
            e["logLoss"] = metrics.log_loss(y_true, np.array([o["probabilities"] for o in m.outputs]), labels=[0, 1, 2])
        else:
            y_true = m.label.astype(float).to_numpy()
            y_pred = np.array([o["value"][0] for o in m.outputs])
            e["mae"] = metrics.mean_absolute_error(y_true, y_pred)
            e["rmse"] = metrics.root_mean_squared_error(y_true, y_pred)
        expected.append(e)
    return {"predictions": preds, "labels": labels, "expected": expected}


out = {
    "windowMs": WINDOW_MS,
    "labelWindowMs": LABEL_WINDOW_MS,
    "graceMs": GRACE_MS,
    "classification": scenario("classification"),
    "regression": scenario("regression"),
}
path = pathlib.Path(__file__).resolve().parents[2] / "src/monitoring/fixtures/accuracy-golden.json"
path.write_text(json.dumps(out) + "\n")
print(path, {k: len(out[k]["expected"]) for k in ("classification", "regression")})
