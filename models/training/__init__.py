"""The NumPy training core: layers with explicit backward passes, optimizers, delayed-gradient
training with stashing / EMA / prediction, spiking networks with BPTT, and FOSI's curvature tools.

* :mod:`models.training.data` - the offline datasets (scikit-learn's bundled digits);
* :mod:`models.training.nn` / :mod:`models.training.optim` - NumPy layers, networks, SGD and Adam;
* :mod:`models.training.trainer` - :func:`train`: training with the staleness of a schedule;
* :mod:`models.training.snn` - spiking networks (LIF neurons, surrogate gradients, BPTT);
* :mod:`models.training.hvp`, :mod:`~models.training.lanczos`, :mod:`~models.training.fosi`,
  :mod:`~models.training.kfac` - Hessian-vector products, Lanczos, FOSI and K-FAC (DHO2 study).
"""

import importlib

__all__ = ["COMPENSATIONS", "TrainConfig", "TrainResult", "train"]


def __getattr__(name: str):
    # the trainer pulls in SciPy; importing a light submodule (models.training.staleness) must not
    if name in __all__:
        return getattr(importlib.import_module("models.training.trainer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
