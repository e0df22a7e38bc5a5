"""Network descriptions: layer specs, the network DAG, the zoo and network files.

* :mod:`models.network.layers` - conventional layer specs with shape inference (conv2d, linear,
  pooling, flatten, activations, batch norm, residual add);
* :mod:`models.network.spiking` - LIF spiking layer specs (SpikePipe);
* :mod:`models.network.spec` - :class:`NetworkSpec` (a validated DAG of named layers) and
  :func:`weight_layers` (the numbering 1..L the task model uses);
* :mod:`models.network.zoo` / :mod:`models.network.snn_zoo` - built-in networks, and
  :func:`load_network`, the one door for "which network?" (zoo name, ``mlp:...`` or a file);
* :mod:`models.network.files` - YAML/JSON network files and SCALE-Sim topology CSVs.
"""

from models.network.spec import INPUT, NetworkSpec, Node, WeightLayer, chain, weight_layers

__all__ = ["INPUT", "NetworkSpec", "Node", "WeightLayer", "chain", "weight_layers"]
