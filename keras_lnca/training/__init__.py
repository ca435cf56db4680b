"""Training: recipes (`lnca train`) and committable checkpoints.

* `schema`: reading and checking recipe files against one schema
  (`load_recipe`, `check_recipe`, `build_model`).
* `recipe`: running a recipe's phases with checkpoints (`train`).
* `preset_card`: evaluating a trained model and writing it with its card
  (`evaluate_recipe`, `demo_metrics`, `write_preset`).
* `init_from`: starting a run from a preset's or another run's weights.
* `checkpoint`: `Checkpoint`, the per-epoch checkpoint a run resumes from.
* `divergence`: stopping a run whose loss is no longer finite.

The model's own training parts (the losses, the sample pool, the step
schedule, the phase switch, the `fit` hooks) live with the model in
`keras_lnca.models`; `SamplePool` is re-exported here.
"""

from keras_lnca.models.sample_pool import SamplePool
from keras_lnca.training.checkpoint import Checkpoint
from keras_lnca.training.init_from import initial_weights
from keras_lnca.training.preset_card import demo_metrics
from keras_lnca.training.preset_card import evaluate_recipe
from keras_lnca.training.preset_card import write_preset
from keras_lnca.training.recipe import train
from keras_lnca.training.recipe import training_data
from keras_lnca.training.schema import build_model
from keras_lnca.training.schema import check_recipe
from keras_lnca.training.schema import data_root
from keras_lnca.training.schema import load_recipe
from keras_lnca.training.schema import resolve_data

__all__ = [
    "Checkpoint", "SamplePool", "build_model", "check_recipe", "data_root", "demo_metrics", "evaluate_recipe",
    "initial_weights", "load_recipe", "resolve_data", "train", "training_data", "write_preset",
]
