"""`init_from`: a new run starts from the weights of a preset, a `.keras` file
or another run's newest checkpoint."""

import pathlib

import numpy as np

from keras_lnca.errors import UserError


def initial_weights(model, source, log=print):
    """Starts a model from the weights of a preset, a `.keras` file or a run folder.

    `source` is a preset name, a `.keras` path, or a run folder (its newest
    committed checkpoint). The automaton's and the codec's weights are
    copied, not the sample pool nor the optimizer: the new run has its own
    schedule. The donor must have the same architecture, or be the same
    architecture without a noise map (`noise_map=False`): the weights that
    read the state's noise channel then start at zero, so the new model
    starts as the donor does, whatever the map says.
    """
    from keras_lnca.models import presets

    path = pathlib.Path(source)
    if path.is_dir():
        checkpoints = sorted(path.glob("*.weights.h5"), key=lambda p: p.stat().st_mtime)
        if not checkpoints:
            raise UserError(f"init_from {source}: no checkpoint in that folder")
        donor = None
        # The folder does not record its model's config: this model's, or the
        # same without a noise map (see below).
        for noise_map in dict.fromkeys((model.noise_map, False)):
            candidate = type(model).from_config({**model.get_config(), "noise_map": noise_map})
            candidate.build()
            try:
                candidate.load_weights(checkpoints[-1])
            except ValueError:
                continue
            donor = candidate
            break
        if donor is None:
            raise UserError(f"init_from {source}: its weights do not fit this model")
    else:
        donor = presets.load(source)
    pairs = list(zip(donor.nca.weights, model.nca.weights))
    for name in ("encoder", "decoder"):
        if hasattr(model, name):
            pairs += list(zip(getattr(donor, name).weights, getattr(model, name).weights))
    gains_noise_map = getattr(model, "noise_map", False) and not getattr(donor, "noise_map", False)
    values = []
    for donor_variable, variable in pairs:
        value = np.asarray(donor_variable.numpy())
        if gains_noise_map and value.shape != tuple(variable.shape):
            value = _with_noise_channel(value, tuple(variable.shape), model.cell_input_channels)
        if value is None or value.shape != tuple(variable.shape):
            raise UserError(f"init_from {source}: its weights do not fit this model")
        values.append(value)
    if not pairs:
        raise UserError(f"init_from {source}: its weights do not fit this model")
    for (_, variable), value in zip(pairs, values):
        variable.assign(value)
    log(f"initialised {len(pairs)} weight arrays from {source}")


def _with_noise_channel(value, shape, index):
    """A donor's weight array with a zero slice for the state's noise channel.

    The cells read the state's channels in order along one axis of their
    first kernels (a perception convolution's input axis, the first dense
    layer's rows); the noise channel sits at `index`, after the input grid.
    Returns None where the shapes differ otherwise.
    """
    differ = [axis for axis, (a, b) in enumerate(zip(value.shape, shape)) if a != b]
    if len(value.shape) != len(shape) or len(differ) != 1 or shape[differ[0]] != value.shape[differ[0]] + 1:
        return None
    return np.insert(value, index, 0.0, axis=differ[0])
