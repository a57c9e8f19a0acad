"""Builds a small Keras model and exports it as a TensorFlow SavedModel, as TF Serving users do
(`model.export(dir)`): input "features" (FP32 [-1, 4]), outputs "probabilities" (FP32 [-1, 3]) and
"logits" (FP32 [-1, 3]) of the serving_default signature. Fixed seed: the same weights every run.
Usage: python make_savedmodel.py <dir>
"""
import sys

import numpy as np
import tensorflow as tf


def main():
    tf.keras.utils.set_random_seed(7)
    features = tf.keras.Input(shape=(4,), name="features")
    hidden = tf.keras.layers.Dense(16, activation="relu")(features)
    logits = tf.keras.layers.Dense(3)(hidden)
    probabilities = tf.keras.layers.Softmax()(logits)
    model = tf.keras.Model(inputs={"features": features}, outputs={"probabilities": probabilities, "logits": logits})
    # A few steps of training on synthetic data: weights that are not just the initialisation.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((256, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    model.compile(optimizer="adam", loss={"logits": tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    model.fit({"features": x}, {"logits": y}, epochs=3, verbose=0)
    model.export(sys.argv[1], verbose=False)


if __name__ == "__main__":
    main()
