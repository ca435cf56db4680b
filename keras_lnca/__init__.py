"""keras-lnca: Latent Neural Cellular Automata for image restoration (Keras 3).

```python
import keras_lnca as kl

model = kl.LNCA(channels=1)          # the paper's configuration
model.compile()
model.fit(train_ds, epochs=5)        # phase "autoencoder"
model.set_phase("nca")
model.fit(train_ds, epochs=20)       # phase "nca"
restored = model.restore(noisy)      # numpy in, numpy out
```
"""

__version__ = "0.1.0"

from keras_lnca import callbacks
from keras_lnca import layers
from keras_lnca import metrics
from keras_lnca import optimizers
from keras_lnca.models import LNCA
from keras_lnca.models import PixelNCA
from keras_lnca.models import presets


def __getattr__(name):
    # numpy/Pillow-heavy modules load on first use: `kl.data`, `kl.degradations`.
    import importlib

    if name in ("data", "degradations", "evaluation", "export"):
        return importlib.import_module(f"keras_lnca.{name}")
    raise AttributeError(f"module 'keras_lnca' has no attribute {name!r}")
