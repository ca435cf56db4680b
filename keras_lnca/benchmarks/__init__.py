"""Benchmarks behind `lnca benchmark`.

* `keras_lnca.benchmarks.efficiency`: parameters, FLOPs, inference latency
  and peak memory of LNCA against the pixel-space NCA baselines across input
  sizes, a training step's cost, the largest input that fits a memory
  budget, and the LNCA / ViTCA ratios (`lnca benchmark efficiency`).

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
