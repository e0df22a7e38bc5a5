"""Cycle cost models: processors (MAC arrays, systolic arrays), links, collectives, and their
text forms. Every model is closed-form (no per-cycle simulation).

* :mod:`simulator.costs.processors` - :class:`MacArray`, :class:`SystolicArray` (SCALE-Sim's
  compute cycles), :class:`ScaledCost`; anything with ``task_cycles`` is a :class:`CostModel`;
* :mod:`simulator.costs.links` - :class:`LinkModel`: latency plus bandwidth;
* :mod:`simulator.costs.collectives` - ring all-reduce, all-gather and broadcast over a link;
* :mod:`simulator.costs.text` - ``mac:256``, ``systolic:32x32:ws``, ``100,16``.
"""

from simulator.costs.links import FREE_LINK, LinkModel
from simulator.costs.processors import (
                                        DATAFLOWS,
                                        CostModel,
                                        GemmDetail,
                                        MacArray,
                                        ScaledCost,
                                        SystolicArray,
                                        conv_to_gemm,
                                        scale,
)
from simulator.costs.text import HARDWARE_FORMS, LINK_FORMS, parse_hardware, parse_link

__all__ = ["DATAFLOWS", "FREE_LINK", "CostModel", "GemmDetail", "LinkModel", "MacArray", "ScaledCost", "SystolicArray",
           "conv_to_gemm", "scale", "HARDWARE_FORMS", "LINK_FORMS", "parse_hardware", "parse_link"]
