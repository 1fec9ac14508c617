"""On-the-fly augmentation in the tf.data pipeline (never inside the model, so the exported
inference graph has no random ops and converts cleanly to int8).

One combined affine warp per image (rotation, shift, zoom, horizontal flip) like Keras-2's
ImageDataGenerator, instead of chaining several Random* layers that each resample the image.
"""

from __future__ import annotations

import math

# name -> (rotation degrees, shift fraction, zoom fraction, flip, brightness/contrast jitter)
PRESETS = {
    "none": None,
    "seed": dict(rotation=10.0, shift=0.1, zoom=0.1, flip=True, jitter=0.0),
    "edge": dict(rotation=15.0, shift=0.1, zoom=0.15, flip=True, jitter=0.2),
}


def make(kind: str, erasing: float = 0.0, seed: int = 0):
    """Return fn(images float32 (B,H,W,1) in 0..255) -> augmented images, or None for 'none'."""
    import tensorflow as tf

    if kind not in PRESETS:
        raise ValueError(f"unknown augmentation '{kind}' (known: {', '.join(PRESETS)})")
    p = PRESETS[kind]
    if p is None and not erasing:
        return None
    tf.random.set_seed(seed)

    def uniform(shape, lo=0.0, hi=1.0):
        return tf.random.uniform(shape, lo, hi)

    def affine(images):
        b = tf.shape(images)[0]
        h = tf.cast(tf.shape(images)[1], tf.float32)
        w = tf.cast(tf.shape(images)[2], tf.float32)
        cx, cy = (w - 1) / 2, (h - 1) / 2
        theta = uniform([b], -1, 1) * p["rotation"] * math.pi / 180
        s = 1.0 / (1.0 + uniform([b], -p["zoom"], p["zoom"]))  # output->input scale
        tx = uniform([b], -p["shift"], p["shift"]) * w
        ty = uniform([b], -p["shift"], p["shift"]) * h
        f = tf.where(uniform([b]) < 0.5, -1.0, 1.0) if p["flip"] else tf.ones([b])
        a0, a1 = s * tf.cos(theta) * f, -s * tf.sin(theta)
        b0, b1 = s * tf.sin(theta) * f, s * tf.cos(theta)
        a2 = cx - a0 * cx - a1 * cy + tx
        b2 = cy - b0 * cx - b1 * cy + ty
        zeros = tf.zeros([b])
        transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
            fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
        if p["jitter"]:
            gain = 1.0 + uniform([b, 1, 1, 1], -p["jitter"], p["jitter"])
            bias = uniform([b, 1, 1, 1], -p["jitter"], p["jitter"]) * 64.0
            mean = tf.reduce_mean(out, axis=[1, 2, 3], keepdims=True)
            out = tf.clip_by_value((out - mean) * gain + mean + bias, 0.0, 255.0)
        return out

    def erase(images):
        # Random erasing (Zhong et al. 2017): a box of 2-25% of the area, aspect 0.3-3.3,
        # filled with noise, applied to each image with probability `erasing`.
        shape = tf.shape(images)
        b, h, w = shape[0], shape[1], shape[2]
        hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
        area = uniform([b], 0.02, 0.25) * hf * wf
        aspect = tf.exp(uniform([b], math.log(0.3), math.log(3.3)))
        eh = tf.minimum(tf.sqrt(area * aspect), hf)
        ew = tf.minimum(tf.sqrt(area / aspect), wf)
        y0 = uniform([b]) * (hf - eh)
        x0 = uniform([b]) * (wf - ew)
        yy = tf.cast(tf.range(h), tf.float32)[None, :, None]
        xx = tf.cast(tf.range(w), tf.float32)[None, None, :]
        box = ((yy >= y0[:, None, None]) & (yy < (y0 + eh)[:, None, None])
               & (xx >= x0[:, None, None]) & (xx < (x0 + ew)[:, None, None]))
        on = (uniform([b]) < erasing)[:, None, None]
        mask = tf.cast(box & on, tf.float32)[..., None]
        noise = uniform(shape, 0.0, 255.0)
        return images * (1 - mask) + noise * mask

    def fn(images):
        if p is not None:
            images = affine(images)
        if erasing:
            images = erase(images)
        return images

    return fn
