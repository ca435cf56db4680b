"""The efficiency benchmark: LNCA against pixel-space NCAs (`lnca benchmark efficiency`).

What is measured, for each model and square input size (batch 1, 3
channels, untrained weights, the same number of NCA steps for every model):

* `params`: scalars in the network's weights (encoder, decoder and cell,
  BatchNorm statistics included; the training sample pool excluded).
* `flops`: floating-point operations per image, counted analytically by
  `count_flops` (a multiply-add is 2 FLOPs; see its docstring for the
  per-layer rules). The count is the algorithm's, not a backend's, so it is
  the same on TensorFlow, JAX and PyTorch.
* `latency_ms`: median wall time of `repeats` forward passes after `warmup`
  untimed passes, through the compiled function that `Model.predict` runs
  on each backend (`compiled.compiled_forward`): `tf.function` on TensorFlow (XLA
  only where Keras' `jit_compile="auto"` would use it, i.e. with a GPU),
  `jax.jit` of `stateless_call` on JAX (compiled ahead of the first pass),
  eager under `torch.no_grad()` on PyTorch. The input is a numpy array and
  the output is read back to numpy inside the timed call.
* `peak_memory_mb`: in a fresh subprocess, the peak over compilation and
  every pass minus the level after imports and model build
  (`memory_baseline_mb`): on CPU the process peak resident set (`VmHWM`,
  reset through `/proc/self/clear_refs`), on a GPU the framework
  allocator's device peak (both via `keras_lnca.memory_probe`);
  `memory_source` names the source. Its parts: `compile_memory_mb` (the
  compilation or tracing alone) and `run_memory_mb` (the passes alone,
  above the level after compilation, free heap memory returned to the OS
  first with `malloc_trim` so that it cannot hide the passes' needs).
* A training step (phase `"nca"`, 32x32 crops, batch 8, a fixed 32 NCA
  steps) timed through `Model.fit`: median per-batch latency after the
  compiling batches; `peak_memory_mb` over the whole `fit` above the level
  after build and `compile()`, `run_memory_mb` over the timed batches.
* `max_side`: the largest square input each model restores within the
  memory budget, extrapolated from the measured points (an affine fit of
  peak memory against pixels through the two largest measured sizes) or,
  with `max_side="bisect"`, found by bisection with a fresh subprocess per
  trial; `max_side_details` says which.
* `ratios` of every LNCA variant against pixel ViTCA at each common size.

A point is skipped, and the model's larger sizes are not run, when its
peak memory (predicted from the previous points: memory and latency grow
about linearly with the number of pixels) would exceed the memory budget,
or when one warm-up and one timed pass would exceed the time budget.

Example:
```python
from keras_lnca.benchmarks import efficiency

config = efficiency.EfficiencyConfig(sizes=(64, 128), backends=("jax",))
result = efficiency.run(config)
print(efficiency.format_report(result))
efficiency.write_json("efficiency.json", result)
```

The modules: `models` (the benchmarked models), `flops` (parameters and
analytic FLOPs), `measure` (one point, in this process or a fresh one),
`config` (settings and worker specs), `extrapolate` (predicted costs, the
largest input), `sweep` (`run`), `report` (tables, JSON, plot); the memory
probes are `keras_lnca.memory_probe`.
"""

from keras_lnca.benchmarks.efficiency.config import BACKEND_MODULES
from keras_lnca.benchmarks.efficiency.config import BACKENDS
from keras_lnca.benchmarks.efficiency.config import DEFAULT_SIZES
from keras_lnca.benchmarks.efficiency.config import FLOPS_METHOD
from keras_lnca.benchmarks.efficiency.config import LATENCY_METHOD
from keras_lnca.benchmarks.efficiency.config import MEMORY_METHOD
from keras_lnca.benchmarks.efficiency.config import EfficiencyConfig
from keras_lnca.benchmarks.efficiency.config import validate_config
from keras_lnca.benchmarks.efficiency.extrapolate import predict_cost
from keras_lnca.benchmarks.efficiency.flops import count_flops
from keras_lnca.benchmarks.efficiency.flops import count_params
from keras_lnca.benchmarks.efficiency.measure import measure_inference
from keras_lnca.benchmarks.efficiency.measure import measure_train_step
from keras_lnca.benchmarks.efficiency.measure import run_isolated
from keras_lnca.benchmarks.efficiency.measure import worker_main
from keras_lnca.benchmarks.efficiency.models import BASELINE
from keras_lnca.benchmarks.efficiency.models import LNCA_MODELS
from keras_lnca.benchmarks.efficiency.models import MODELS
from keras_lnca.benchmarks.efficiency.models import build_model
from keras_lnca.benchmarks.efficiency.report import format_report
from keras_lnca.benchmarks.efficiency.report import plot
from keras_lnca.benchmarks.efficiency.report import write_json
from keras_lnca.benchmarks.efficiency.report import write_markdown
from keras_lnca.benchmarks.efficiency.sweep import compute_ratios
from keras_lnca.benchmarks.efficiency.sweep import cross_backend
from keras_lnca.benchmarks.efficiency.sweep import current_backend
from keras_lnca.benchmarks.efficiency.sweep import machine_info
from keras_lnca.benchmarks.efficiency.sweep import run
from keras_lnca.memory_probe import MIB
