"""GPT-style transformer layers: embedding, attention, feed-forward and the language-model head.

A GPT block (pre-layer-norm, as GPT-2 and Megatron build it) is two weight layers here, so a
pipeline can cut between its halves:

* :class:`Attention` ``(s, h) -> (s, h)``: layer norm, the QKV projection, the two attention-score
  products per head (Q K^T and A V), softmax, the output projection, dropout and the residual add;
* :class:`FeedForward` ``(s, h) -> (s, h)``: layer norm, ``h -> e h``, GELU, ``e h -> h``, dropout and
  the residual add.

:class:`Embedding` turns ``(s,)`` token ids into ``(s, h)`` (token and learned position tables) and
:class:`LMHead` is the final layer norm and the ``h -> V`` projection (untied: a pipeline keeps
its own copy of the word embeddings on the last stage, as Megatron does). Shapes are per
sample (one sequence of ``s`` tokens); work is per sample, the task-graph builder multiplies
by the batch.

Matrix products per sample (``a`` heads, ``d = h / a``); MACs are FLOPs / 2:

==========  ============================  ======================  =============================
layer       forward (F)                   weight gradient (WG)    input gradient (AG1)
==========  ============================  ======================  =============================
attention   4 s h^2 + 2 s^2 h             4 s h^2                 4 s h^2 + 4 s^2 h
ffn         2 e s h^2                     2 e s h^2               2 e s h^2
==========  ============================  ======================  =============================

The score products Q K^T and A V multiply two activations, so they have no weight gradient
and two input gradients each. With e = 4 a block's forward is 12 s h^2 + 2 s^2 h MACs, i.e.
Megatron's ``24 b s h^2 + 4 b s^2 h`` FLOPs (Narayanan et al., SC 2021, section 5.1), and
forward + backward is their ``72 b s h^2 (1 + s / 6h)``. Parameters per block: ``12 h^2 + 13 h``.

Activations kept for the backward (Korthikanti et al., 2022, "Reducing activation recomputation
in large transformer models", section 4.1): with 2-byte words and 1-byte dropout masks a block
keeps ``s b h (34 + 5 a s / h)`` bytes: the attention half ``13 s b h + 5 a s^2 b`` (layer-norm
input, QKV input, Q and K, softmax output, its dropout mask and output, V, the projection's
input and the output dropout mask), the feed-forward half ``21 s b h`` (layer-norm input, the
two linear inputs of h and 4h, GELU's input, the dropout mask). :meth:`stash_bytes` gives them
for any word size (masks stay 1 byte); without dropout the masks and the dropout outputs go.

Element-wise operations per element (our modelling choice, as elsewhere in the zoo): layer
norm 2, bias 1, GELU 1, scale + causal mask + softmax 4 per score, dropout 1, residual add 1;
the backward of the block's own element-wise work (softmax, layer norm, GELU, dropout) is as
many again and runs in its AG1.

>>> a = Attention(heads=12)
>>> a.output_shape([(1024, 768)]), a.params([(1024, 768)]) + FeedForward().params([(1024, 768)])
((1024, 768), 7087872)
>>> blk = a.macs([(1024, 768)]) + FeedForward().macs([(1024, 768)])
>>> 2 * blk == 24 * 1024 * 768**2 + 4 * 1024**2 * 768
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from models.errors import NetworkError
from models.network.layers import LayerSpec, Shape, _positive

Gemm = tuple[int, int, int]

LAYER_NORM_OPS = 2
SOFTMAX_OPS = 4  # scale, causal mask, exp, normalise


def _flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise NetworkError(f"{what} must be true or false, got {value!r}")
    return value


class _TokenLayer(LayerSpec):
    """A layer over ``(s, h)`` token activations (shared checks and the build hooks' defaults)."""

    #: the builder (``models.graph.build``) reads the hooks below instead of its conv/linear rules
    token_layer: ClassVar[bool] = True

    def _tokens(self, inputs: list[Shape]) -> tuple[int, int]:
        shape = self._one(inputs)
        if len(shape) != 2:
            raise NetworkError(f"{self.kind} needs a (sequence, hidden) input, got shape {shape}")
        return shape[0], shape[1]

    def task_gemms(self, in_shape: Shape, out_shape: Shape, batch: int) -> dict[str, tuple[Gemm, ...]]:
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def backward_elementwise(self, inputs: list[Shape]) -> int:
        """Element-wise work of the layer's own backward (per sample), run in its AG1."""
        return self.elementwise(inputs)

    def weight_grad_elementwise(self, inputs: list[Shape]) -> int:
        return 0

    def stash_bytes(self, inputs: list[Shape], word_bytes: int) -> int:
        raise NotImplementedError  # pragma: no cover


@dataclass(frozen=True)
class Embedding(_TokenLayer):
    """Token ids ``(s,)`` -> ``(s, hidden)``: a ``vocab x hidden`` table and ``s`` learned positions."""

    vocab: int
    hidden: int

    kind: ClassVar[str] = "embedding"
    has_weights: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _positive(self.vocab, "embedding vocab")
        _positive(self.hidden, "embedding hidden")

    def _seq(self, inputs: list[Shape]) -> int:
        shape = self._one(inputs)
        if len(shape) != 1:
            raise NetworkError(f"embedding needs a (sequence,) input of token ids, got shape {shape}")
        return shape[0]

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return (self._seq(inputs), self.hidden)

    def params(self, inputs: list[Shape]) -> int:
        return (self.vocab + self._seq(inputs)) * self.hidden

    def elementwise(self, inputs: list[Shape]) -> int:
        return self._seq(inputs) * self.hidden  # gather and add the position row

    def weight_grad_elementwise(self, inputs: list[Shape]) -> int:
        return 2 * self._seq(inputs) * self.hidden  # scatter-add into both tables

    def task_gemms(self, in_shape: Shape, out_shape: Shape, batch: int) -> dict[str, tuple[Gemm, ...]]:
        return {"F": (), "WG": (), "AG1": ()}

    def stash_bytes(self, inputs: list[Shape], word_bytes: int) -> int:
        return self._seq(inputs) * word_bytes  # the token ids, for the scatter


@dataclass(frozen=True)
class Attention(_TokenLayer):
    """The attention half of a pre-LN GPT block (module docstring); ``heads`` must divide the hidden size."""

    heads: int
    dropout: bool = True

    kind: ClassVar[str] = "attention"
    has_weights: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _positive(self.heads, "attention heads")
        _flag(self.dropout, "attention dropout")

    def _dims(self, inputs: list[Shape]) -> tuple[int, int, int]:
        s, h = self._tokens(inputs)
        if h % self.heads:
            raise NetworkError(f"attention: {self.heads} heads do not divide the hidden size {h}")
        return s, h, self.heads

    def output_shape(self, inputs: list[Shape]) -> Shape:
        s, h, _ = self._dims(inputs)
        return (s, h)

    def params(self, inputs: list[Shape]) -> int:
        _, h, _ = self._dims(inputs)
        return 4 * h * h + 4 * h + 2 * h  # QKV and projection with biases, layer norm

    def macs(self, inputs: list[Shape]) -> int:
        s, h, _ = self._dims(inputs)
        return 4 * s * h * h + 2 * s * s * h

    def elementwise(self, inputs: list[Shape]) -> int:
        s, h, a = self._dims(inputs)
        drop = int(self.dropout)
        # layer norm, QKV and projection biases, residual; softmax (+ dropout) per score
        return s * h * (LAYER_NORM_OPS + 4 + 1 + drop) + a * s * s * (SOFTMAX_OPS + drop)

    def task_gemms(self, in_shape: Shape, out_shape: Shape, batch: int) -> dict[str, tuple[Gemm, ...]]:
        s, h, a = self._dims([in_shape])
        d, rows, heads_rows = h // a, batch * s, batch * a * s
        return {
            # QKV, scores Q K^T (per head: s x d . d x s), context A V (s x s . s x d), projection
            "F": ((rows, 3 * h, h), (heads_rows, s, d), (heads_rows, d, s), (rows, h, h)),
            "WG": ((3 * h, h, rows), (h, h, rows)),
            # projection, dA = dC V^T, dV = A^T dC, dQ = dS K, dK = dS^T Q, QKV
            "AG1": ((rows, h, h), (heads_rows, s, d), (heads_rows, d, s), (heads_rows, d, s), (heads_rows, d, s),
                    (rows, h, 3 * h)),
        }

    def stash_bytes(self, inputs: list[Shape], word_bytes: int) -> int:
        s, h, a = self._dims(inputs)
        drop = int(self.dropout)
        # words: LN input, QKV input, Q, K, V, projection input; softmax output (+ its dropout output)
        words = 6 * s * h + (1 + drop) * a * s * s
        masks = drop * (a * s * s + s * h)  # 1 byte per element
        return words * word_bytes + masks


@dataclass(frozen=True)
class FeedForward(_TokenLayer):
    """The feed-forward half of a pre-LN GPT block: ``h -> expansion * h -> h`` with GELU."""

    expansion: int = 4
    dropout: bool = True

    kind: ClassVar[str] = "feedforward"
    has_weights: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _positive(self.expansion, "feedforward expansion")
        _flag(self.dropout, "feedforward dropout")

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return self._tokens(inputs)

    def params(self, inputs: list[Shape]) -> int:
        _, h = self._tokens(inputs)
        e = self.expansion
        return 2 * e * h * h + e * h + h + 2 * h

    def macs(self, inputs: list[Shape]) -> int:
        s, h = self._tokens(inputs)
        return 2 * self.expansion * s * h * h

    def elementwise(self, inputs: list[Shape]) -> int:
        s, h = self._tokens(inputs)
        e = self.expansion
        # layer norm, the biases (e h + h), GELU (e h), dropout, residual
        return s * h * (LAYER_NORM_OPS + e + 1 + e + int(self.dropout) + 1)

    def task_gemms(self, in_shape: Shape, out_shape: Shape, batch: int) -> dict[str, tuple[Gemm, ...]]:
        s, h = self._tokens([in_shape])
        eh, rows = self.expansion * h, batch * s
        return {"F": ((rows, eh, h), (rows, h, eh)),
                "WG": ((eh, h, rows), (h, eh, rows)),
                "AG1": ((rows, eh, h), (rows, h, eh))}

    def stash_bytes(self, inputs: list[Shape], word_bytes: int) -> int:
        s, h = self._tokens(inputs)
        e, drop = self.expansion, int(self.dropout)
        words = (2 + 2 * e) * s * h  # LN input, fc1 input, GELU input (e h), fc2 input (e h)
        return words * word_bytes + drop * s * h


@dataclass(frozen=True)
class LMHead(_TokenLayer):
    """The final layer norm and the ``hidden -> vocab`` projection of every token (no bias)."""

    vocab: int

    kind: ClassVar[str] = "lm_head"
    has_weights: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _positive(self.vocab, "lm_head vocab")

    def output_shape(self, inputs: list[Shape]) -> Shape:
        s, _ = self._tokens(inputs)
        return (s, self.vocab)

    def params(self, inputs: list[Shape]) -> int:
        _, h = self._tokens(inputs)
        return h * self.vocab + 2 * h

    def macs(self, inputs: list[Shape]) -> int:
        s, h = self._tokens(inputs)
        return s * h * self.vocab

    def elementwise(self, inputs: list[Shape]) -> int:
        s, h = self._tokens(inputs)
        return LAYER_NORM_OPS * s * h

    def task_gemms(self, in_shape: Shape, out_shape: Shape, batch: int) -> dict[str, tuple[Gemm, ...]]:
        s, h = self._tokens([in_shape])
        rows, v = batch * s, self.vocab
        return {"F": ((rows, v, h),), "WG": ((v, h, rows),), "AG1": ((rows, h, v),)}

    def stash_bytes(self, inputs: list[Shape], word_bytes: int) -> int:
        s, h = self._tokens(inputs)
        return (2 * s * h + s * self.vocab) * word_bytes  # LN input, projection input, logits


#: transformer layer kinds by the name used in network files
TRANSFORMER_KINDS: dict[str, type[LayerSpec]] = {cls.kind: cls for cls in (Embedding, Attention, FeedForward, LMHead)}


def is_token_layer(layer: LayerSpec) -> bool:
    return getattr(layer, "token_layer", False)


__all__ = ["Embedding", "Attention", "FeedForward", "LMHead", "TRANSFORMER_KINDS", "is_token_layer",
           "LAYER_NORM_OPS", "SOFTMAX_OPS"]
