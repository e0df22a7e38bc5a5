"""GPT-style networks for the zoo: GPT-2 and the GPT-3-like models of the zero-bubble paper.

:func:`gpt` chains an :class:`~models.network.transformer.Embedding`, ``layers`` blocks of
:class:`~models.network.transformer.Attention` + :class:`~models.network.transformer.FeedForward`
(2 weight layers each) and an :class:`~models.network.transformer.LMHead`. The input is one
sequence of token ids per sample, so ``--input 2048`` sets the sequence length.

==============  ======  ======  =====  ======  =====  =====================================
name            layers  hidden  heads  seq     vocab  source
==============  ======  ======  =====  ======  =====  =====================================
gpt2            12      768     12     1024    50257  GPT-2 small (Radford et al., 2019)
gpt2_medium     24      1024    16     1024    50257  GPT-2 medium
gpt3-1.5b       22      2304    24     1024    50257  zero-bubble paper, setup table
gpt3-6.2b       30      4096    32     1024    50257  zero-bubble paper
gpt3-14.6b      46      5120    40     1024    50257  zero-bubble paper
gpt3-28.3b      62      6144    48     1024    50257  zero-bubble paper
==============  ======  ======  =====  ======  =====  =====================================

Parameters: GPT-2 small counts 124,439,808 with the output layer tied to the embedding (the
published figure); the pipeline stores the head's own copy (+ V h + 2 h: the final layer norm),
so :meth:`NetworkSpec.total_params` reports 163,037,184 (:func:`tied_params` gives the tied count).

>>> net = gpt2()
>>> len(net.nodes), tied_params(net)
(26, 124439808)
"""

from __future__ import annotations

from collections.abc import Sequence

from models.errors import NetworkError
from models.network.spec import NetworkSpec, chain
from models.network.transformer import Attention, Embedding, FeedForward, LMHead

GPT2_VOCAB = 50257


def gpt(name: str, layers: int, hidden: int, heads: int, seq: int = 1024, vocab: int = GPT2_VOCAB,
        input_shape: Sequence[int] | None = None, description: str = "") -> NetworkSpec:
    """A GPT of ``layers`` blocks (module docstring); ``input_shape`` ``(s,)`` overrides ``seq``.

    >>> net = gpt("tiny", layers=2, hidden=64, heads=4, seq=32, vocab=100)
    >>> [n.layer.kind for n in net.nodes]
    ['embedding', 'attention', 'feedforward', 'attention', 'feedforward', 'lm_head']
    """
    for what, v in (("layers", layers), ("hidden", hidden), ("heads", heads), ("seq", seq), ("vocab", vocab)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise NetworkError(f"gpt {what} must be a positive integer, got {v!r}")
    shape = tuple(input_shape) if input_shape is not None else (seq,)
    if len(shape) != 1:
        raise NetworkError(f"a GPT reads one sequence of token ids per sample: input shape (s,), got {shape}")
    body = [Embedding(vocab, hidden)]
    for _ in range(layers):
        body += [Attention(heads), FeedForward()]
    body.append(LMHead(vocab))
    names = ["embed"] + [f"h{i}.{part}" for i in range(layers) for part in ("attn", "mlp")] + ["head"]
    return chain(name, shape, body, names=names,
                 description=description or f"GPT, {layers} blocks, hidden {hidden}, {heads} heads, seq {shape[0]}")


def tied_params(net: NetworkSpec) -> int:
    """Parameters with the output projection tied to the token embedding (the published count)."""
    head = next((n for n in net.nodes if isinstance(n.layer, LMHead)), None)
    total = net.total_params()
    if head is None:
        return total
    (_, hidden), = net.input_shapes(head)
    return total - head.layer.vocab * hidden


def gpt2(input_shape: Sequence[int] | None = None) -> NetworkSpec:
    """GPT-2 small: 12 blocks, hidden 768, 12 heads, 1,024 tokens."""
    return gpt("gpt2", 12, 768, 12, input_shape=input_shape, description="GPT-2 small (124M), seq 1024")


def gpt2_medium(input_shape: Sequence[int] | None = None) -> NetworkSpec:
    """GPT-2 medium: 24 blocks, hidden 1024, 16 heads, 1,024 tokens."""
    return gpt("gpt2_medium", 24, 1024, 16, input_shape=input_shape, description="GPT-2 medium (355M), seq 1024")


def _zero_bubble(size: str, layers: int, hidden: int, heads: int):
    def build(input_shape: Sequence[int] | None = None) -> NetworkSpec:
        return gpt(f"gpt3-{size}", layers, hidden, heads, input_shape=input_shape,
                   description=f"GPT-3-like {size} of the zero-bubble paper: {layers} blocks, hidden {hidden}, "
                               f"{heads} heads, seq 1024")
    build.__name__ = build.__qualname__ = f"gpt3_{size.replace('.', 'p')}"
    build.__doc__ = f"The zero-bubble paper's {size} model: {layers} blocks, hidden {hidden}, {heads} heads."
    return build


#: name -> builder, in listing order
GPT_ZOO = {
    "gpt2": gpt2,
    "gpt2_medium": gpt2_medium,
    "gpt3-1.5b": _zero_bubble("1.5b", 22, 2304, 24),
    "gpt3-6.2b": _zero_bubble("6.2b", 30, 4096, 32),
    "gpt3-14.6b": _zero_bubble("14.6b", 46, 5120, 40),
    "gpt3-28.3b": _zero_bubble("28.3b", 62, 6144, 48),
}

__all__ = ["gpt", "gpt2", "gpt2_medium", "tied_params", "GPT_ZOO", "GPT2_VOCAB"]
