"""Stops a training run whose loss is no longer finite, before it is saved."""

import math

from keras_lnca.errors import UserError


def stop_on_non_finite_loss(checkpoint):
    """A Keras callback that ends `fit` with a `UserError` at the first batch
    whose loss is NaN or infinite.

    It raises from inside the batch, so no checkpoint of the diverged epoch
    is written: `checkpoint` (a `keras_lnca.training.checkpoint.Checkpoint`)
    keeps the last good epoch, and the run resumes from it once the recipe
    is changed (a lower learning rate, usually).
    """
    import keras

    class StopOnNonFiniteLoss(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is None or math.isfinite(float(loss)):
                return
            kept = checkpoint.phase_progress()["epochs"]
            kept = f"the checkpoint after epoch {kept} is kept" if kept else "no checkpoint of it was written"
            raise UserError(
                f"training diverged: phase {checkpoint.phase!r} has loss {float(loss)} at epoch "
                f"{self.epoch + 1}, batch {batch + 1}; {kept}, and no preset "
                "(lower the learning rate, then run again to resume)"
            )

    return StopOnNonFiniteLoss()
