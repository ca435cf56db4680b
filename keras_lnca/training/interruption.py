"""Ends a training run promptly on SIGTERM or Ctrl-C (see `keras_lnca.interrupts`)."""

from keras_lnca import interrupts


def stop_on_interrupt():
    """A Keras callback that raises a signalled interruption at the next batch
    end, in case the `KeyboardInterrupt` the signal raised was swallowed inside
    Keras (its logs conversion catches everything). The epoch in progress is
    not checkpointed; the run resumes after the last whole epoch.
    """
    import keras

    class StopOnInterrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            interrupts.raise_if_requested()

        def on_epoch_end(self, epoch, logs=None):
            interrupts.raise_if_requested()

    return StopOnInterrupt()
