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
    architecture without a noise map (`noise_map=False`) or without the luma
    guide (`luma_guide=False`): the weights that read the state's new fixed
    channels then start at zero, so the new model starts as the donor does,
    whatever the map or the guide says.
    """
    from keras_lnca.models import presets

    path = pathlib.Path(source)
    if path.is_dir():
        checkpoints = sorted(path.glob("*.weights.h5"), key=lambda p: p.stat().st_mtime)
        if not checkpoints:
            raise UserError(f"init_from {source}: no checkpoint in that folder")
        donor = None
        # The folder does not record its model's config: this model's, or the
        # same without a noise map or without the luma guide (see below).
        config = model.get_config()
        variants = [(noise_map, guide)
                    for noise_map in dict.fromkeys((model.noise_map, False))
                    for guide in dict.fromkeys((model.luma_guide, False))]
        for noise_map, guide in variants:
            candidate = type(model).from_config({**config, "noise_map": noise_map, "luma_guide": guide})
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
    values = []
    for donor_variable, variable in pairs:
        value = np.asarray(donor_variable.numpy())
        if value.shape != tuple(variable.shape):
            value = _with_new_channels(value, tuple(variable.shape), _new_channels(model, donor))
        if value is None or value.shape != tuple(variable.shape):
            raise UserError(f"init_from {source}: its weights do not fit this model")
        values.append(value)
    if not pairs:
        raise UserError(f"init_from {source}: its weights do not fit this model")
    for (_, variable), value in zip(pairs, values):
        variable.assign(value)
    log(f"initialised {len(pairs)} weight arrays from {source}")


def _new_channels(model, donor):
    """`(index, count)` of each fixed state channel group `model` has and `donor`
    lacks, in state order: the noise level after the input grid, then the
    luma guide's grid."""
    grid = model.cell_input_channels
    groups = []
    if getattr(model, "noise_map", False) and not getattr(donor, "noise_map", False):
        groups.append((grid, 1))
    if getattr(model, "luma_guide", False) and not getattr(donor, "luma_guide", False):
        groups.append((grid + int(model.noise_map), grid))
    return groups


def _with_new_channels(value, shape, groups):
    """A donor's weight array with zero slices for the state's new fixed channels.

    The cells read the state's channels in order along one axis of their
    first kernels (a perception convolution's input axis, the first dense
    layer's rows); each new group of `count` channels sits at `index` (in
    the new state's order). Returns None where the shapes differ otherwise.
    """
    differ = [axis for axis, (a, b) in enumerate(zip(value.shape, shape)) if a != b]
    added = sum(count for _, count in groups)
    if not groups or len(value.shape) != len(shape) or len(differ) != 1 or (
        shape[differ[0]] != value.shape[differ[0]] + added
    ):
        return None
    for index, count in groups:  # in state order, so each index is final
        value = np.insert(value, [index] * count, 0.0, axis=differ[0])
    return value
