"""Task graphs of one training step: what each task computes, and the work it costs.

* :mod:`models.graph.work` - :class:`TaskWork`, the hardware-independent work of a task;
* :mod:`models.graph.build` - :func:`training_graph`, the F / WG / AG1 / AG2 / U graph of a network.
"""
