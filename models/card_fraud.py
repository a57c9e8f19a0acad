"""The card-payments example that needs state: a seeded event generator, the offline (pandas)
reference of the features the example pipeline computes, and the data of the card-fraud-gbt model.

The generator (numpy, seeded) simulates payment cards over six hours. Its labels follow these rules:

1. Every card has a typical amount (lognormal, median 40.00) and a mean gap between its payments
   (uniform 15-90 min). Its *legitimate* payments form a Poisson process over the six hours; each
   amount is the typical amount times lognormal(0, 0.5); the merchant is drawn with weights that
   favour everyday categories (grocery, fuel, restaurant). One legitimate payment in ten is
   followed 10-120 s later by a second one at another merchant (two purchases in a row). Label 0.
2. One card in six is compromised at a uniform time: a burst of 3-8 payments 5-90 s apart, at
   merchants of the risky categories (electronics, online, travel) four times in five, each for
   2-8 times the card's typical amount. Label 1 (fraud) for every payment of the burst.

So a payment is fraud when it belongs to such a burst; what gives it away is state: how many
payments the card made in the last 10 minutes and for how much (the window), how long after the
card's previous payment it came (the gap), and the merchant's category and risk (the table).
The first payment of a burst looks like an ordinary big purchase, so no model gets everything.

Amounts are whole cents (integers), so the window sums, means and counts the pipeline computes
equal these pandas ones exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

T0_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z
SPAN_MS = 6 * 3_600_000
WINDOW_MS = 600_000  # the pipeline's sliding window: [t - 10 min, t], both ends included
CATEGORIES = ["grocery", "fuel", "restaurant", "electronics", "online", "travel"]
RISKY = {"electronics", "online", "travel"}
# Legitimate payments' category weights (everyday shopping first).
LEGIT_WEIGHTS = np.array([0.34, 0.18, 0.26, 0.06, 0.12, 0.04])
MERCHANTS = 60
FEATURES = [
    "amount",
    "n_10m",
    "mean_amount_10m",
    "max_amount_10m",
    "gap_ms",
    "merchant_risk",
    *[f"category_{c}" for c in CATEGORIES],
]


def merchants_table(seed: int = 7) -> pd.DataFrame:
    """The reference table: merchant id -> category and risk score (0..1, two decimals)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(MERCHANTS):
        category = CATEGORIES[i % len(CATEGORIES)]
        base = 0.55 if category in RISKY else 0.15
        risk = float(np.clip(round(base + rng.normal(0, 0.12), 2), 0.01, 0.99))
        rows.append({"merchant": f"m-{i:03d}", "category": category, "risk": risk})
    return pd.DataFrame(rows)


def generate(cards: int, seed: int) -> pd.DataFrame:
    """Payments of `cards` cards over six hours, sorted by time: id, card, merchant, amount (cents), ts (ms), label."""
    rng = np.random.default_rng(seed)
    merchants = merchants_table()
    by_category = {c: merchants.index[merchants.category == c].to_numpy() for c in CATEGORIES}
    risky_index = np.concatenate([by_category[c] for c in sorted(RISKY)])
    ids = merchants.merchant.to_numpy()
    rows: list[tuple[str, str, int, int, int]] = []

    def merchant(risky: bool) -> str:
        if risky:
            return str(ids[rng.choice(risky_index)])
        category = CATEGORIES[int(rng.choice(len(CATEGORIES), p=LEGIT_WEIGHTS))]
        return str(ids[rng.choice(by_category[category])])

    for c in range(cards):
        card = f"c-{seed}-{c:04d}"
        typical = 4000.0 * float(np.exp(rng.normal(0, 0.6)))  # cents
        mean_gap = float(rng.uniform(15, 90)) * 60_000
        t = float(rng.exponential(mean_gap))
        while t < SPAN_MS:
            rows.append((card, merchant(False), int(max(50, round(typical * np.exp(rng.normal(0, 0.5))))), int(t), 0))
            if rng.random() < 0.1:
                t2 = t + float(rng.uniform(10_000, 120_000))
                rows.append((card, merchant(False), int(max(50, round(typical * np.exp(rng.normal(0, 0.5))))), int(t2), 0))
                t = t2
            t += float(rng.exponential(mean_gap))
        if rng.random() < 1 / 6:
            t = float(rng.uniform(0, SPAN_MS - 600_000))
            for _ in range(int(rng.integers(3, 9))):
                risky = rng.random() < 0.8
                rows.append((card, merchant(risky), int(round(typical * rng.uniform(2, 8))), int(t), 1))
                t += float(rng.uniform(5_000, 90_000))
    df = pd.DataFrame(rows, columns=["card", "merchant", "amount", "ts", "label"])
    df["ts"] = df["ts"] + T0_MS
    # One payment per card and millisecond, so "the card's previous payment" is never ambiguous.
    df = df.sort_values(["card", "ts"], kind="stable").reset_index(drop=True)
    while True:
        dup = df.duplicated(["card", "ts"])
        if not dup.any():
            break
        df.loc[dup, "ts"] += 1
        df = df.sort_values(["card", "ts"], kind="stable").reset_index(drop=True)
    df = df.sort_values(["ts", "card"], kind="stable").reset_index(drop=True)
    df.insert(0, "id", [f"p-{seed}-{i:06d}" for i in range(len(df))])
    return df


def features(events: pd.DataFrame) -> pd.DataFrame:
    """The offline reference of the pipeline's features, one row per payment (same order as `events`).

    Per card, over the sliding window [t - 10 min, t] (pandas rolling with closed='both': the
    payment itself and the card's payments of the 10 minutes before it): the count, the mean and
    the max amount; the gap to the card's previous payment inside that window (ms; missing when
    there is none: the pipeline's feature default, 600000, fills it); the merchant's risk and
    category (one-hot) from the table.
    """
    df = events.copy()
    df["time"] = pd.to_datetime(df["ts"], unit="ms")
    out = []
    for _, g in df.sort_values(["card", "ts"], kind="stable").groupby("card", sort=False):
        rolling = g.set_index("time")["amount"].astype("float64").rolling(f"{WINDOW_MS}ms", closed="both")
        part = pd.DataFrame(
            {
                "n_10m": rolling.count().to_numpy().astype(np.int64),
                "sum_amount_10m": rolling.sum().to_numpy(),
                "max_amount_10m": rolling.max().to_numpy(),
            },
            index=g.index,
        )
        gap = g["ts"].diff()
        part["gap_ms"] = gap.where(gap <= WINDOW_MS)
        out.append(part)
    f = pd.concat(out).loc[df.index]
    f["mean_amount_10m"] = f["sum_amount_10m"] / f["n_10m"]
    table = merchants_table().set_index("merchant")
    f["amount"] = df["amount"].astype("float64")
    f["merchant_risk"] = table.loc[df["merchant"], "risk"].to_numpy()
    category = table.loc[df["merchant"], "category"].to_numpy()
    for c in CATEGORIES:
        f[f"category_{c}"] = (category == c).astype(np.float64)
    return f


def matrix(f: pd.DataFrame) -> np.ndarray:
    """The model input rows in FEATURES order, as the pipeline assembles them (gap default 600000)."""
    m = f[FEATURES].copy()
    m["gap_ms"] = m["gap_ms"].fillna(float(WINDOW_MS))
    return m.to_numpy(dtype=np.float64)
