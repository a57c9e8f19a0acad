"""Builds the example models of models/repository/ and the reference samples of models/samples/.

Run it through build.sh (pinned venv, one thread). Everything is seeded, so a rebuild gives the same
bytes; build-summary.json lists sizes, sha256 sums, signatures and accuracies of what was written.
Data: scikit-learn's bundled datasets only (load_digits, load_breast_cancer), no downloads, and the
seeded card-payments generator of card_fraud.py (card-fraud-gbt).
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from scipy.ndimage import zoom
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import card_fraud
import cnn_mobilenet
from common import (
    REPOSITORY,
    ROOT,
    file_facts,
    float32_number,
    io_signature,
    name_batch_dim,
    batch_consistency,
    sample_from_session,
    save_model,
    session,
    tensor_json,
    write_sample,
)

SEED = 0
TEST_SIZE = 0.25
SAMPLE_ROWS = 8
# Default opset 17 and ONNX-ML 3 (TreeEnsembleClassifier, ZipMap, ArrayFeatureExtractor).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}

summary: dict = {"models": {}, "samples": {}, "warnings": []}


def split(x: np.ndarray, y: np.ndarray):
    return train_test_split(x, y, test_size=TEST_SIZE, stratify=y, random_state=SEED)


def to_onnx(estimator, name: str, n_features: int, zipmap: bool, classifier) -> onnx.ModelProto:
    model = convert_sklearn(
        estimator,
        name=name.replace("-", "_"),  # graph name; skl2onnx would otherwise use a random uuid
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options={id(classifier): {"zipmap": zipmap}},
        target_opset=TARGET_OPSET,
    )
    name_batch_dim(model)
    return model


def check_classifier(name: str, path, sk_predict, sk_proba, x_test: np.ndarray, y_test: np.ndarray, extra=None):
    """Compares onnxruntime against scikit-learn on the whole held-out split and records the facts."""
    sess = session(path)
    # The first two outputs are the label and the probabilities (card-fraud-gbt adds a third).
    label, proba = sess.run(None, {"input": x_test.astype(np.float32)})[:2]
    plain = session(path, optimized=False).run(None, {"input": x_test.astype(np.float32)})[:2]
    if isinstance(proba, list):  # ZipMap: list of {class: probability}
        proba = np.array([[row[k] for k in sorted(row)] for row in proba], dtype=np.float32)
        plain[1] = np.array([[row[k] for k in sorted(row)] for row in plain[1]], dtype=np.float32)
    model = onnx.load(str(path))
    summary["models"][name] = {
        "file": file_facts(path),
        "ir_version": model.ir_version,
        "opset_import": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "signature": io_signature(sess),
        "test_rows": int(len(y_test)),
        "accuracy_sklearn": round(float(np.mean(sk_predict == y_test)), 4),
        "accuracy_onnx": round(float(np.mean(label == y_test)), 4),
        "labels_differing_sklearn_vs_onnx": int(np.sum(label != sk_predict)),
        "max_abs_prob_diff_sklearn_vs_onnx": float32_number(np.max(np.abs(proba - sk_proba))),
        "max_abs_prob_diff_ort_optimized_vs_unoptimized": float32_number(np.max(np.abs(proba - plain[1]))),
        **(extra or {}),
    }
    return sess


def reference_sample(name: str, sess, inputs: dict[str, np.ndarray]) -> None:
    """Writes samples/<name>.json and records whether batching changes the sample rows' outputs."""
    sample_from_session(name, sess, inputs)
    summary["models"][name]["sample_row_alone_vs_in_batch"] = batch_consistency(sess, inputs)


def digits_mlp() -> None:
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = split(x, y)
    # Fitted on the pixel range [0, 16] (not the data) so the graph computes exactly x * 0.0625.
    scale = MinMaxScaler().fit(np.array([[0.0] * 64, [16.0] * 64]))
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=SEED)
    clf.fit(scale.transform(x_train), y_train)
    pipe = Pipeline([("scale", scale), ("mlp", clf)])  # steps already fitted; never pipe.fit()
    path = save_model("digits-mlp", to_onnx(pipe, "digits-mlp", 64, False, clf), max_batch=64)
    sess = check_classifier(
        "digits-mlp", path, pipe.predict(x_test), pipe.predict_proba(x_test), x_test, y_test,
        {"training_iterations": int(clf.n_iter_)},
    )
    reference_sample("digits-mlp", sess, {"input": x_test[:SAMPLE_ROWS].astype(np.float32)})


def digits_mlp_retrained() -> None:
    """A second version of digits-mlp that answers differently (fewer hidden units, another seed):
    variants/digits-mlp/2/model.onnx, same signature. Hot-swap and shadow tests install it as a new
    version and tell it apart from version 1 by its outputs (samples/digits-mlp-v2.json: the same
    input rows as samples/digits-mlp.json). Not in repository/: the examples serve version 1."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = split(x, y)
    scale = MinMaxScaler().fit(np.array([[0.0] * 64, [16.0] * 64]))
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000, random_state=SEED + 1)
    clf.fit(scale.transform(x_train), y_train)
    pipe = Pipeline([("scale", scale), ("mlp", clf)])
    model = to_onnx(pipe, "digits-mlp", 64, False, clf)
    onnx.checker.check_model(model, full_check=True)
    path = ROOT / "variants" / "digits-mlp" / "2" / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    sess = check_classifier(
        "digits-mlp-v2", path, pipe.predict(x_test), pipe.predict_proba(x_test), x_test, y_test,
        {"training_iterations": int(clf.n_iter_)},
    )
    reference_sample("digits-mlp-v2", sess, {"input": x_test[:SAMPLE_ROWS].astype(np.float32)})


# The monitoring scene (`inflow demo --scene monitoring`): from a point in the stream on, every
# image arrives moved this many pixels to the right (the left column blank). src/cli/demo-monitoring-data.ts
# applies the same rule to the events it replays.
SHIFT_PIXELS = 1


def shift_right(x: np.ndarray, by: int = SHIFT_PIXELS) -> np.ndarray:
    """8x8 images (rows of 64) moved `by` pixels to the right; the columns moved in are 0."""
    images = x.reshape(-1, 8, 8)
    out = np.zeros_like(images)
    out[:, :, by:] = images[:, :, :-by]
    return out.reshape(-1, 64)


def digits_mlp_shifted() -> None:
    """digits-mlp retrained on shifted images (same architecture, seed and split as version 1):
    variants/digits-mlp-shifted/model.onnx, the monitoring scene's better version. Also writes
    variants/digits-mlp-shuffled/model.onnx: the same model with its output layer's weights
    shuffled (fixed seed), a deliberately broken export whose guarded rollout must be rolled back."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = split(x, y)
    x_train, x_test = shift_right(x_train), shift_right(x_test)
    scale = MinMaxScaler().fit(np.array([[0.0] * 64, [16.0] * 64]))
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=SEED)
    clf.fit(scale.transform(x_train), y_train)
    pipe = Pipeline([("scale", scale), ("mlp", clf)])
    model = to_onnx(pipe, "digits-mlp", 64, False, clf)
    onnx.checker.check_model(model, full_check=True)
    path = ROOT / "variants" / "digits-mlp-shifted" / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    check_classifier(
        "digits-mlp-shifted", path, pipe.predict(x_test), pipe.predict_proba(x_test), x_test, y_test,
        {"training_iterations": int(clf.n_iter_), "shift_pixels": SHIFT_PIXELS},
    )
    rng = np.random.default_rng(18)
    for i, t in enumerate(model.graph.initializer):
        if t.name == "coefficient1":  # the output layer's weights (hidden -> 10 classes)
            w = numpy_helper.to_array(t)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(rng.permutation(w.reshape(-1)).reshape(w.shape), t.name))
    onnx.checker.check_model(model, full_check=True)
    path = ROOT / "variants" / "digits-mlp-shuffled" / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    label = session(path).run(None, {"input": x_test.astype(np.float32)})[0]
    summary["models"]["digits-mlp-shuffled"] = {
        "file": file_facts(path),
        "test_rows": int(len(y_test)),
        "accuracy_onnx": round(float(np.mean(label == y_test)), 4),
        "shift_pixels": SHIFT_PIXELS,
    }


def digits_dataset() -> None:
    """The held-out digits rows with their labels: the labelled events `inflow demo` replays."""
    x, y = load_digits(return_X_y=True)
    _, x_test, _, y_test = split(x, y)
    dataset = {
        "source": "scikit-learn load_digits, held-out split (test_size=0.25, stratify=y, random_state=0)",
        "features": "pixels: 8x8 grey levels 0..16, row-major",
        "rows": len(y_test),
        "pixels": [[int(v) for v in row] for row in x_test],
        "labels": [int(v) for v in y_test],
    }
    path = ROOT / "datasets" / "digits-test.json"
    path.parent.mkdir(exist_ok=True)
    # One row per line: small diffs, readable with head/grep.
    rows = ",\n    ".join(json.dumps(r, separators=(",", ":")) for r in dataset["pixels"])
    head = {k: v for k, v in dataset.items() if k not in ("pixels", "labels")}
    text = json.dumps(head, indent=2)[:-2] + ',\n  "labels": ' + json.dumps(dataset["labels"], separators=(",", ":"))
    path.write_text(text + ',\n  "pixels": [\n    ' + rows + "\n  ]\n}\n")


def upsample_digits() -> tuple[np.ndarray, np.ndarray]:
    """load_digits as 28x28 images in [0, 1]: /16, then bilinear zoom by 3.5 (scipy order=1)."""
    x, y = load_digits(return_X_y=True)
    images = zoom(x.reshape(-1, 8, 8) / 16.0, (1, 3.5, 3.5), order=1)
    return np.clip(images, 0.0, 1.0).reshape(-1, 784).astype(np.float32), y


def mlp_784() -> None:
    x, y = upsample_digits()
    x_train, x_test, y_train, y_test = split(x, y)
    clf = MLPClassifier(hidden_layer_sizes=(32, 32, 32, 32), max_iter=400, random_state=SEED)
    clf.fit(x_train, y_train)
    path = save_model("mlp-784", to_onnx(clf, "mlp-784", 784, False, clf), max_batch=64)
    sess = check_classifier(
        "mlp-784", path, clf.predict(x_test), clf.predict_proba(x_test), x_test, y_test,
        {"training_iterations": int(clf.n_iter_)},
    )
    reference_sample("mlp-784", sess, {"input": x_test[:SAMPLE_ROWS]})


def breast_cancer_gbt() -> None:
    data = load_breast_cancer()
    x_train_raw, x_test_raw, y_train, y_test = split(data.data, data.target)
    # The model is trained on STANDARDIZED features, so that standardize -> model is the correct
    # pipeline; the statistics are written to feature-stats.json for that first step.
    scaler = StandardScaler().fit(x_train_raw)
    x_train, x_test = scaler.transform(x_train_raw), scaler.transform(x_test_raw)
    x_test32 = x_test.astype(np.float32)
    clf = GradientBoostingClassifier(n_estimators=100, learning_rate=0.1, max_depth=3, random_state=SEED)
    clf.fit(x_train, y_train)
    sk_predict, sk_proba = clf.predict(x_test32), clf.predict_proba(x_test32)
    for name, zipmap in (("breast-cancer-gbt", False), ("breast-cancer-gbt-zipmap", True)):
        path = save_model(name, to_onnx(clf, name, 30, zipmap, clf), max_batch=64)
        sess = check_classifier(name, path, sk_predict, sk_proba, x_test, y_test)
        if zipmap:
            rows = x_test32[:SAMPLE_ROWS]
            label, proba = sess.run(None, {"input": rows})
            outs = sess.get_outputs()
            outputs = {
                outs[0].name: tensor_json(label),
                outs[1].name: {
                    # Not an OIP datatype: the ONNX type onnxruntime reports for the ZipMap output.
                    "datatype": outs[1].type,
                    "shape": [len(proba)],
                    "data": [{str(k): float32_number(v) for k, v in sorted(row.items())} for row in proba],
                },
            }
            write_sample(name, {"input": rows}, outputs)
            summary["models"][name]["sample_row_alone_vs_in_batch"] = batch_consistency(sess, {"input": rows})
        else:
            reference_sample(name, sess, {"input": x_test32[:SAMPLE_ROWS]})
            gbt_sess = sess

    stats = {
        "description": "Per-feature mean and standard deviation (ddof=0, as sklearn StandardScaler) of the "
        "training split of sklearn load_breast_cancer. breast-cancer-gbt expects (x - mean) / std as input; "
        "its label output indexes 'classes'.",
        "rows": int(len(x_train_raw)),
        "ddof": 0,
        "features": [str(f) for f in data.feature_names],
        "mean": [float(v) for v in scaler.mean_],
        "std": [float(v) for v in scaler.scale_],
        "classes": [str(c) for c in data.target_names],
    }
    (REPOSITORY / "breast-cancer-gbt" / "feature-stats.json").write_text(json.dumps(stats, indent=2) + "\n")

    # Reference for the pipeline example: RAW features in, standardized in float64, cast to FP32, model.
    raw = x_test_raw[:SAMPLE_ROWS].astype(np.float32)
    std64 = ((raw.astype(np.float64) - scaler.mean_) / scaler.scale_).astype(np.float32)
    std32 = (raw - scaler.mean_.astype(np.float32)) / scaler.scale_.astype(np.float32)
    label, proba = gbt_sess.run(None, {"input": std64})
    label32, proba32 = gbt_sess.run(None, {"input": std32})
    write_sample(
        "breast-cancer-gbt-pipeline", {"input": raw},
        {"label": tensor_json(label), "probabilities": tensor_json(proba)},
    )
    summary["samples"]["breast-cancer-gbt-pipeline"] = {
        "standardize_fp32_vs_fp64_labels_differing": int(np.sum(label != label32)),
        "standardize_fp32_vs_fp64_max_abs_prob_diff": float32_number(np.max(np.abs(proba - proba32))),
    }


def card_fraud_gbt() -> None:
    """card-fraud-gbt: trained on the features the card-payments pipeline computes (windowed per-card
    aggregates + the merchants table), computed offline with pandas from generated payments (the
    rules are in card_fraud.py). Train: 1500 cards (seed 1); held out: 500 other cards (seed 2).
    Also writes datasets/card-payments.json: a third generation (150 cards, seed 3) with the pandas
    features and the model's answers, which the example's test and the demo replay."""
    train, test = card_fraud.generate(1500, seed=1), card_fraud.generate(500, seed=2)
    x_train = card_fraud.matrix(card_fraud.features(train)).astype(np.float32)
    x_test = card_fraud.matrix(card_fraud.features(test)).astype(np.float32)
    y_train, y_test = train["label"].to_numpy(), test["label"].to_numpy()
    clf = GradientBoostingClassifier(n_estimators=60, learning_rate=0.1, max_depth=3, random_state=SEED)
    clf.fit(x_train, y_train)
    model = to_onnx(clf, "card-fraud-gbt", len(card_fraud.FEATURES), False, clf)
    # A third output, the fraud probability alone ([N]: probabilities[:, 1]), so a pipeline writes one number.
    index = onnx.helper.make_tensor("fraud_class", onnx.TensorProto.INT64, [], [1])
    model.graph.initializer.append(index)
    model.graph.node.append(onnx.helper.make_node("Gather", ["probabilities", "fraud_class"], ["fraud_probability"], axis=1))
    model.graph.output.append(onnx.helper.make_tensor_value_info("fraud_probability", onnx.TensorProto.FLOAT, ["N"]))
    path = save_model("card-fraud-gbt", model, max_batch=64)
    predict = clf.predict(x_test)
    sess = check_classifier(
        "card-fraud-gbt", path, predict, clf.predict_proba(x_test), x_test, y_test,
        {
            "train_rows": int(len(y_train)),
            "train_fraud_share": round(float(y_train.mean()), 4),
            "test_fraud_share": round(float(y_test.mean()), 4),
            "accuracy_always_legit": round(float(1 - y_test.mean()), 4),
            "precision_fraud_sklearn": round(float(y_test[predict == 1].mean()), 4),
            "recall_fraud_sklearn": round(float(predict[y_test == 1].mean()), 4),
        },
    )
    reference_sample("card-fraud-gbt", sess, {"input": x_test[:SAMPLE_ROWS]})
    (REPOSITORY / "card-fraud-gbt" / "features.json").write_text(
        json.dumps(
            {
                "description": "Input columns of card-fraud-gbt, in order (input FP32 [N, 12]): what "
                "examples/pipelines/card-payments.yaml assembles. Windows are sliding, [t - 10 min, t] per card; "
                "gap_ms is 600000 when the card made no payment in the window before this one; amounts in cents. "
                "Outputs: label (1 = fraud), probabilities [legit, fraud], fraud_probability.",
                "features": card_fraud.FEATURES,
                "window_ms": card_fraud.WINDOW_MS,
                "categories": card_fraud.CATEGORIES,
            },
            indent=2,
        )
        + "\n"
    )

    replay = card_fraud.generate(150, seed=3)
    f = card_fraud.features(replay)
    x = card_fraud.matrix(f).astype(np.float32)
    label, _, fraud = sess.run(None, {"input": x})
    summary["models"]["card-fraud-gbt"]["replay_rows"] = int(len(replay))
    summary["models"]["card-fraud-gbt"]["replay_accuracy_onnx"] = round(float(np.mean(label == replay["label"].to_numpy())), 4)
    merchants = card_fraud.merchants_table()
    columns = ["n_10m", "sum_amount_10m", "mean_amount_10m", "max_amount_10m", "gap_ms", "fraud_probability"]
    events, references = [], []
    for i, row in enumerate(replay.itertuples(index=False)):
        events.append({"id": row.id, "card": row.card, "merchant": row.merchant, "amount": int(row.amount), "ts": int(row.ts)})
        gap = f["gap_ms"].iloc[i]
        references.append([
            int(f["n_10m"].iloc[i]), int(f["sum_amount_10m"].iloc[i]), float(f["mean_amount_10m"].iloc[i]),
            int(f["max_amount_10m"].iloc[i]), None if np.isnan(gap) else int(gap), float32_number(fraud[i]),
        ])
    head = {
        "source": "models/card_fraud.py generate(150, seed=3): seeded card payments (the label rules are in its docstring)",
        "window_ms": card_fraud.WINDOW_MS,
        "rows": len(events),
        "merchants": merchants.to_dict(orient="records"),
        "labels": [int(v) for v in replay["label"]],
        "referenceColumns": columns,
    }
    lines = lambda rows: ",\n    ".join(json.dumps(r, separators=(",", ":")) for r in rows)  # noqa: E731
    text = json.dumps(head, separators=(",", ":"))[:-1]
    text += ',\n  "events": [\n    ' + lines(events) + '\n  ],\n  "reference": [\n    ' + lines(references) + "\n  ]\n}\n"
    (ROOT / "datasets" / "card-payments.json").write_text(text)


def cnn() -> None:
    model, facts = cnn_mobilenet.build()
    path = save_model("cnn-mobilenet", model, max_batch=16)
    sess = session(path)
    images = cnn_mobilenet.sample_images()
    (proba,) = sess.run(None, {"input": images})
    (plain,) = session(path, optimized=False).run(None, {"input": images})
    reference = cnn_mobilenet.reference_forward(facts["layers"], images)
    summary["models"]["cnn-mobilenet"] = {
        "file": file_facts(path),
        "ir_version": model.ir_version,
        "opset_import": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "signature": io_signature(sess),
        "parameters": facts["parameters"],
        "macs_per_image": facts["macs_per_image"],
        "sample_probabilities_max": float32_number(proba.max()),
        "max_abs_prob_diff_ort_vs_numpy_float64": float32_number(np.max(np.abs(proba - reference))),
        "max_abs_prob_diff_ort_optimized_vs_unoptimized": float32_number(np.max(np.abs(proba - plain))),
    }
    reference_sample("cnn-mobilenet", sess, {"input": images})


def main() -> int:
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in (digits_mlp, digits_mlp_retrained, digits_mlp_shifted, digits_dataset, mlp_784, breast_cancer_gbt, card_fraud_gbt, cnn):
            t0 = time.monotonic()
            step()
            print(f"{step.__name__}: {time.monotonic() - t0:.1f} s", file=sys.stderr)
    summary["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    for path in sorted((ROOT / "samples").glob("*.json")):
        summary["samples"].setdefault(path.stem, {})["file"] = file_facts(path)
    files = [m["file"]["bytes"] for m in summary["models"].values()]
    files += [s["file"]["bytes"] for s in summary["samples"].values()]
    summary["total_bytes_models_and_samples"] = sum(files)
    (ROOT / "build-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "signature"} for k, v in summary["models"].items()}, indent=1))
    print(f"total {summary['total_bytes_models_and_samples']} bytes; build.py took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
