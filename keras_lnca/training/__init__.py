"""Training: recipes (`lnca train`) and committable checkpoints.

* `recipe`: reading and checking recipe files, running their phases with
  checkpoints, evaluating and writing presets (`load_recipe`, `train`,
  `evaluate_recipe`, `write_preset`).
* `checkpoint`: `Checkpoint`, the per-epoch checkpoint a run resumes from.

The model's own training parts (the losses, the sample pool, the step
schedule, the phase switch, the `fit` hooks) live with the model in
`keras_lnca.models`; `SamplePool` is re-exported here.
"""

from keras_lnca.models.sample_pool import SamplePool
from keras_lnca.training.checkpoint import Checkpoint
from keras_lnca.training.recipe import build_model
from keras_lnca.training.recipe import check_recipe
from keras_lnca.training.recipe import data_root
from keras_lnca.training.recipe import demo_metrics
from keras_lnca.training.recipe import evaluate_recipe
from keras_lnca.training.recipe import initial_weights
from keras_lnca.training.recipe import load_recipe
from keras_lnca.training.recipe import resolve_data
from keras_lnca.training.recipe import train
from keras_lnca.training.recipe import training_data
from keras_lnca.training.recipe import write_preset

__all__ = [
    "Checkpoint", "SamplePool", "build_model", "check_recipe", "data_root", "demo_metrics", "evaluate_recipe",
    "initial_weights", "load_recipe", "resolve_data", "train", "training_data", "write_preset",
]
