"""Writes src/monitoring/fixtures/drift-golden.json: samples and what scipy/numpy say about them.

The drift statistics of src/monitoring/drift-stats.ts are held to these values (1e-6) by
src/monitoring/drift-stats.test.ts. Regenerate (deterministic: fixed seeds) with
    python3 -m venv /tmp/v && /tmp/v/bin/pip install -r scripts/monitoring/requirements.txt
    /tmp/v/bin/python scripts/monitoring/drift-golden.py
"""
import json
import pathlib

import numpy as np
import scipy
from scipy import spatial, special, stats

EPS = 1e-4  # PSI_EPSILON


def psi(expected, actual):
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_case(name, ref, cur, bins=10):
    ref = np.asarray(ref, dtype=float)
    cur = np.asarray(cur, dtype=float)
    edges = []
    for q in np.quantile(ref, [i / bins for i in range(1, bins)]):
        if not edges or q > edges[-1]:
            edges.append(float(q))
    def props(x):
        idx = np.searchsorted(np.asarray(edges), x, side="left")
        return (np.bincount(idx, minlength=len(edges) + 1) / len(x)).tolist()
    e, a = props(ref), props(cur)
    ks = stats.ks_2samp(ref, cur)
    n, m = len(ref), len(cur)
    return {
        "name": name,
        "reference": ref.tolist(),
        "current": cur.tolist(),
        "edges": edges,
        "expected": e,
        "actual": a,
        "psi": psi(e, a),
        "ksStatistic": float(ks.statistic),
        # The asymptotic p-value drift-stats.ts computes; ks_2samp's own (exact for small samples) for information.
        "ksPValueAsymptotic": float(stats.kstwobign.sf(np.sqrt(n * m / (n + m)) * ks.statistic)),
        "ksPValueScipy": float(ks.pvalue),
    }


def categorical_case(name, observed, reference_props):
    observed = np.asarray(observed, dtype=float)
    p = np.asarray(reference_props, dtype=float)
    f_exp = p / p.sum() * observed.sum()
    chi = stats.chisquare(observed, f_exp)
    return {
        "name": name,
        "observed": observed.tolist(),
        "expected": f_exp.tolist(),
        "referenceProportions": p.tolist(),
        "chiSquareStatistic": float(chi.statistic),
        "chiSquarePValue": float(chi.pvalue),
        "jensenShannon": float(spatial.distance.jensenshannon(p, observed, base=2)),
    }


rng = np.random.default_rng(18)
numeric = [
    numeric_case("normal, no shift", rng.normal(0, 1, 800), rng.normal(0, 1, 400)),
    numeric_case("normal, mean shifted by 0.3", rng.normal(0, 1, 800), rng.normal(0.3, 1, 400)),
    numeric_case("normal vs wider", rng.normal(5, 1, 1000), rng.normal(5, 2, 250)),
    numeric_case("integer pixels with ties", rng.integers(0, 17, 1000), rng.integers(0, 12, 300)),
    numeric_case("small samples", rng.exponential(1, 20), rng.exponential(1.5, 15)),
    numeric_case("disjoint", rng.uniform(0, 1, 200), rng.uniform(2, 3, 200)),
]
categorical = [
    categorical_case("digits classes, same", rng.multinomial(450, [0.1] * 10), [0.1] * 10),
    categorical_case("digits classes, skewed", rng.multinomial(450, [0.3] + [0.7 / 9] * 9), [0.1] * 10),
    categorical_case("three categories", [30, 50, 20], [0.2, 0.5, 0.3]),
    categorical_case("rare category", [99, 1, 0], [0.5, 0.25, 0.25]),
]
z = [0.05, 0.3, 0.6, 0.9, 0.99, 1.0, 1.01, 1.3, 1.8, 2.5, 3.5]
gamma_args = [[0.5, 0.1], [0.5, 3.0], [1.0, 1.0], [4.5, 2.0], [4.5, 9.0], [10.0, 30.0], [49.5, 40.0], [2.0, 0.001]]
out = {
    "generator": f"scripts/monitoring/drift-golden.py (numpy {np.__version__}, scipy {scipy.__version__})",
    "numeric": numeric,
    "categorical": categorical,
    "kolmogorovSf": [{"z": v, "sf": float(stats.kstwobign.sf(v))} for v in z],
    "gammaincc": [{"a": a, "x": x, "q": float(special.gammaincc(a, x))} for a, x in gamma_args],
}
path = pathlib.Path(__file__).resolve().parents[2] / "src" / "monitoring" / "fixtures" / "drift-golden.json"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
