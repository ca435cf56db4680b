"""`CurriculumCallback`: moves a `Curriculum` to the epoch being trained."""

import keras


class CurriculumCallback(keras.callbacks.Callback):
    """Pushes each epoch's curriculum intensity into the data pipeline.

    At the start of every epoch it calls `curriculum.set_epoch(epoch)`, which
    assigns the curriculum's `tf.Variable` (read by the `tf.data` map of
    `keras_lnca.data.folder_dataset`) and its Python attribute (read by
    `keras_lnca.data.FolderPyDataset`). Nothing is retraced, and it works
    whichever backend `fit` runs on.

    A finite `tf.data` pipeline (the default, `repeat=False`) starts a new
    iterator each epoch, after this callback, so every batch of epoch `e`
    uses `value(e)`. With `repeat=True` and `steps_per_epoch`, batches
    already prefetched when an epoch starts keep the previous value. A
    `PyDataset` with `use_multiprocessing=True` does not see the change (its
    workers hold copies); use threads.

    Args:
        curriculum: the `keras_lnca.degradations.Curriculum` that the training
            dataset was built with.
        initial_epoch_offset: added to Keras' epoch number (e.g. when a second
            `fit` call continues a schedule with `initial_epoch=0`).

    Example:

    ```python
    from keras_lnca.callbacks import CurriculumCallback
    from keras_lnca.data import folder_dataset
    from keras_lnca.degradations import Curriculum

    curriculum = Curriculum("impulse", epochs=10)  # p from 0.25 to 0.75
    train = folder_dataset("train400", curriculum, channels=1, seed=0)
    model.fit(train, epochs=10, callbacks=[CurriculumCallback(curriculum)])
    ```
    """

    def __init__(self, curriculum, initial_epoch_offset=0):
        super().__init__()
        self.curriculum = curriculum
        self.initial_epoch_offset = int(initial_epoch_offset)

    def on_epoch_begin(self, epoch, logs=None):
        self.curriculum.set_epoch(epoch + self.initial_epoch_offset)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[f"curriculum_{self.curriculum.kind}"] = float(self.curriculum.current)
