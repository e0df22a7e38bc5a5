"""Task graphs of one training step: what each task computes, and the work it costs.

* :mod:`models.graph.tasks` - the typed task model: :class:`TaskKind`, :class:`Task`, what a
  node carries and the accessors that read it;
* :mod:`models.graph.work` - :class:`TaskWork`, the hardware-independent work of a task;
* :mod:`models.graph.build` - :func:`training_graph`, the F / WG / AG1 / AG2 / U graph of a network;
* :mod:`models.graph.views` - PipeDream's and zero-bubble's coarser views (:func:`contract`);
* :mod:`models.graph.synthetic` - graphs with durations stated directly (closed-form checks).
"""
