"""Optimizers and schedules for Keras 3 (registered, so saved models reload them)."""

from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="fer_edge")
class AdamDecay(keras.optimizers.Adam):
    """Adam with Keras-2's `decay`: lr_t = lr / (1 + decay * iterations).

    Keras 3 dropped `decay`; the seed recipe relies on it. The base `learning_rate` stays a plain
    variable, so ReduceLROnPlateau can still lower it.
    """

    def __init__(self, learning_rate=1e-4, decay=0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.decay = float(decay)

    def _get_current_learning_rate(self):
        lr = super()._get_current_learning_rate()
        if not self.decay:
            return lr
        it = keras.ops.cast(self.iterations, lr.dtype)
        return lr / (1.0 + self.decay * it)

    def get_config(self):
        return {**super().get_config(), "decay": self.decay}


@keras.saving.register_keras_serializable(package="fer_edge")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak`, then cosine decay to `peak * final_fraction`."""

    def __init__(self, peak, total_steps, warmup_steps=0, final_fraction=0.01):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.final_fraction = float(final_fraction)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.peak * (step + 1) / max(self.warmup_steps, 1)
        t = (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1)
        t = keras.ops.clip(t, 0.0, 1.0)
        floor = self.peak * self.final_fraction
        cos = floor + 0.5 * (self.peak - floor) * (1 + keras.ops.cos(math.pi * t))
        return keras.ops.where(step < self.warmup_steps, warm, cos)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "final_fraction": self.final_fraction}


def swa_lr(opts: dict) -> float:
    from ..defaults import SWA_LR_FRACTION

    return float(opts.get("swa_lr") or opts["learning_rate"] * SWA_LR_FRACTION)


def cosine_epochs(opts: dict) -> int:
    """The cosine's length: the whole run, or up to --swa-start, after which the lr stays flat."""
    return int(opts["swa_start"]) if opts.get("swa_start") else int(opts["epochs"])


def make(opts: dict, steps_per_epoch: int):
    if opts["schedule"] == "decay":
        if opts["weight_decay"]:
            raise ValueError("schedule 'decay' uses plain Adam; set weight_decay 0 or use 'cosine'")
        return AdamDecay(opts["learning_rate"], decay=opts["decay"])
    if opts["schedule"] == "cosine":
        # with SWA the cosine ends at swa_lr; otherwise at the schedule's own floor
        floor = ({"final_fraction": swa_lr(opts) / opts["learning_rate"]}
                 if opts.get("swa_start") else {})
        lr = WarmupCosine(opts["learning_rate"], cosine_epochs(opts) * steps_per_epoch,
                          opts["warmup_epochs"] * steps_per_epoch, **floor)
        if opts["weight_decay"]:
            return keras.optimizers.AdamW(lr, weight_decay=opts["weight_decay"])
        return keras.optimizers.Adam(lr)
    raise ValueError(f"unknown schedule '{opts['schedule']}' (known: decay, cosine)")
