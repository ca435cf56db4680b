"""Benchmarks behind `lnca benchmark`.

* `keras_lnca.benchmarks.efficiency`: parameters, FLOPs, inference latency
  and peak memory of LNCA against the pixel-space NCA baselines across input
  sizes, a training step's cost, the largest input that fits a memory
  budget, and the LNCA / ViTCA ratios (`lnca benchmark efficiency`).
* `keras_lnca.benchmarks.quality`: PSNR / SSIM of a trained model after
  each of several NCA step counts, on the degraded images of `lnca
  evaluate`, with the mean update magnitude and the stability beyond the
  nominal step count (`lnca benchmark quality`).
* `keras_lnca.benchmarks.large`: peak memory and wall time of
  `model.restore` on large images, untiled and tiled, a fresh subprocess
  per point (`lnca benchmark large`).

The modules import Keras (and so a backend framework) only inside the
functions that need it: the orchestration runs every measurement in a fresh
subprocess with its own `KERAS_BACKEND`.

Example:
```python
from keras_lnca.benchmarks import efficiency

result = efficiency.run(efficiency.EfficiencyConfig(sizes=(64, 128)))
print(efficiency.format_report(result))
```
"""
