"""Network files: YAML/JSON network descriptions and SCALE-Sim topology CSVs.

YAML / JSON schema (one mapping; JSON is the same structure)::

    name: tiny-cnn              # optional, default: the file name without extension
    description: a toy          # optional
    input: [3, 32, 32]          # per-sample input shape: (C, H, W) or (N,); a bare int means (N,)
    layers:                     # non-empty list, one mapping per node
      - {type: conv2d, out_channels: 16, kernel: 3, padding: 1, activation: relu}   # conv1
      - {type: maxpool, kernel: 2}                                                  # pool1
      - {type: conv2d, out_channels: 16, kernel: 3, padding: 1}                     # conv2
      - {name: skip, type: conv2d, out_channels: 16, kernel: 1, inputs: [pool1]}
      - {name: sum, type: add, inputs: [conv2, skip], activation: relu}
      - {type: linear, out_features: 10}                                            # fc1

Per layer: ``type`` is a key of :data:`FILE_LAYER_KINDS` (conv2d, linear,
maxpool, avgpool, globalavgpool, flatten, activation, batchnorm, add) or ``placeholder``
(see :class:`Placeholder`); ``name`` is optional (default ``conv1``, ``fc2``, ``pool1``,
``add1``... counted per prefix, as :func:`models.network.chain` names them); ``inputs`` is
optional (default: the previous layer in the list, ``input`` for the first one; ``input``
names the network input). Every other key is a field of that layer's spec:
conv2d ``out_channels, kernel, stride, padding, bias, activation``; linear ``out_features,
bias, activation``; maxpool/avgpool ``kernel, stride, padding``; activation ``function``;
add ``activation``; placeholder ``shape``; the transformer kinds (:mod:`models.network.transformer`,
on a ``[sequence]`` input of token ids) embedding ``vocab, hidden``, attention ``heads, dropout``,
feedforward ``expansion, dropout``, lm_head ``vocab``. ``kernel``/``stride``/``padding`` take an int
or ``[h, w]``. Unknown keys are errors (they are usually typos).

SCALE-Sim topology CSV (the header line decides the format; trailing commas, blank rows,
extra columns such as ``Sparsity`` and surrounding spaces are accepted, as SCALE-Sim does):

* convolution: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,
  Channels, Num Filter, Strides,`` (a 9th column headed ``Stride width`` is honoured).
  Each row becomes a ``Conv2d`` without bias on exactly the row's IFMAP x Channels input,
  with SCALE-Sim's output size, so its MACs and GEMM (M = OH*OW, N = filters, K =
  Fh*Fw*C) are SCALE-Sim's. SCALE-Sim pads nothing but rounds the output size up,
  OH = ceil((IH - Fh + S) / S); where the stride does not divide IH - Fh (AlexNet's
  224/11/4 row: 55, not 54) the conv gets the smallest padding that gives that size,
  ceil(r/2) for r = -(IH - Fh) mod S; otherwise (every stride-1 row) padding is 0.
  A row with a 1x1 IFMAP and a 1x1 filter is a fully connected layer and becomes a
  ``Linear``. The network input is the first row's input. SCALE-Sim rows are independent layers (pooling, padding and
  shortcuts are not written down), so each row reads the previous row's output through
  glue that yields the row's declared input:

  - same shape: nothing; a Linear row whose input has as many elements: nothing (it flattens);
  - same channels, smaller map: a ``maxpool`` node ``<row>_pool`` (the pooling the file
    omits; stride = round(previous / declared), kernel chosen so the output is exact);
    for a Linear row, a ``globalavgpool`` node ``<row>_gap``;
  - same channels, larger map: a ``placeholder`` node ``<row>_pad`` (the zero padding
    that SCALE-Sim does not model, e.g. 54x54 after a 3x3 conv read as 56x56);
  - anything else (channel change, concatenation, an unrelated row): a ``placeholder``
    node ``<row>_in`` - the row is an independent layer that reads its declared input.

  The rows thus form a chain in file order, which is what a pipeline over a SCALE-Sim
  topology means; the bytes crossing from one row to the next are the next row's IFMAP.
  Rows named with ``DP`` (which SCALE-Sim splits per channel) are read as ordinary
  convolutions: same MACs and weights, one GEMM instead of one per channel.
* GEMM: ``Layer, M, N, K`` (A = M x K, B = K x N). Each row becomes ``Linear(N)`` on K
  input features, without bias. M is the number of rows of A, i.e. the batch: a
  network here is per sample, so M is not part of it - simulate with batch size M to get
  SCALE-Sim's GEMM exactly (the M values are recorded in the description). Rows whose K
  differs from the previous row's N read their input through a placeholder, as above.

Every malformed file raises :class:`models.errors.NetworkFileError` naming the file, the
line (always for CSV; from the parser for YAML; for JSON from the decoder, or from a
YAML reading of the JSON text for errors found after parsing) and the field.

>>> net = network_from_dict({"input": [4], "layers": [{"type": "linear", "out_features": 2}]})
>>> [n.name for n in net.nodes], net.total_params()
(['fc1'], 10)
>>> network_from_dict(network_to_dict(net)) == net
True
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import networkx as nx
import yaml

from models.errors import NetworkError, NetworkFileError
from models.network.layers import (
    ACTIVATIONS,
    LAYER_KINDS,
    Conv2d,
    GlobalAvgPool,
    LayerSpec,
    Linear,
    MaxPool2d,
    Shape,
    numel,
)
from models.network.spec import INPUT, NetworkSpec, Node
from models.network.spiking import SPIKING_KINDS
from models.network.transformer import TRANSFORMER_KINDS
from models.userfiles import StrictError, excerpt, read_bounded, strict_json, strict_yaml

YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
CSV_SUFFIXES = (".csv",)


@dataclass(frozen=True)
class Placeholder(LayerSpec):
    """Hands the next layer a tensor of the declared ``shape``; no compute, no weights.

    It stands for data movement a file leaves implicit (SCALE-Sim rows that are
    independent layers, padding SCALE-Sim does not model): the layer after it reads
    exactly ``shape``, and the tensor crossing to it has ``numel(shape)`` elements.

    >>> Placeholder((64, 56, 56)).output_shape([(64, 54, 54)])
    (64, 56, 56)
    """

    shape: tuple[int, ...]

    kind: ClassVar[str] = "placeholder"

    def __post_init__(self) -> None:
        shape = self.shape
        if isinstance(shape, list):
            shape = tuple(shape)
        if not isinstance(shape, tuple) or not shape or any(
            not isinstance(d, int) or isinstance(d, bool) or d <= 0 for d in shape
        ):
            raise NetworkError(f"placeholder shape must be a non-empty list of positive integers, got {self.shape!r}")
        object.__setattr__(self, "shape", shape)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._one(inputs)
        return self.shape


#: layer types a network file may use: the layer kinds plus :class:`Placeholder`
FILE_LAYER_KINDS: Mapping[str, type[LayerSpec]] = MappingProxyType({**LAYER_KINDS, **SPIKING_KINDS, **TRANSFORMER_KINDS,
                                                                    Placeholder.kind: Placeholder})

_TOP_KEYS = ("name", "description", "input", "layers")
_NODE_KEYS = ("name", "type", "inputs")
# name prefixes of automatic layer names, as models.network.chain uses them
_PREFIX = MappingProxyType({"conv2d": "conv", "linear": "fc", "maxpool": "pool", "avgpool": "pool"})


# ----------------------------------------------------------------------------- reading files


def read_network_file(path: str | Path) -> NetworkSpec:
    """Read a network from ``.yaml``/``.yml``, ``.json`` or a SCALE-Sim ``.csv`` topology.

    >>> read_network_file("no/such/net.yaml")
    Traceback (most recent call last):
    ...
    models.errors.NetworkFileError: no/such/net.yaml: cannot read the file: No such file or directory
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in YAML_SUFFIXES + JSON_SUFFIXES + CSV_SUFFIXES:
        raise NetworkFileError(
            path, f"unsupported network file type {suffix or '(none)'!r}; use .yaml, .yml, .json or .csv"
        )
    text = _read_text(path, empty_line=1 if suffix in CSV_SUFFIXES else None)  # CSV errors always have a line
    if suffix in CSV_SUFFIXES:
        return read_scalesim_csv(path, text)
    if suffix in YAML_SUFFIXES:
        data = _parse_yaml(path, text)
    else:
        data = _parse_json(path, text)
    return network_from_dict(data, source=path, lines=_line_map(text))


def _read_text(path: Path, empty_line: int | None = None) -> str:
    try:
        raw = read_bounded(path)
    except OSError as exc:
        raise NetworkFileError(path, f"cannot read the file: {exc.strerror or exc}") from None
    except ValueError as exc:  # a FIFO, a device, a directory, or too large
        raise NetworkFileError(path, f"cannot read the file: it {exc}") from None
    try:
        # utf-8-sig: spreadsheets often save CSVs with a byte-order mark
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise NetworkFileError(
            path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})", line=line
        ) from None
    if not text.strip():
        raise NetworkFileError(path, "the file is empty", line=empty_line)
    return text


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        return strict_yaml(text)
    except StrictError as exc:
        raise NetworkFileError(path, f"invalid YAML: {exc.reason}", line=exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NetworkFileError(path, f"invalid YAML: {problem}", line=mark.line + 1 if mark else None) from None
    except (ValueError, RecursionError, OverflowError) as exc:
        # PyYAML's constructors raise plain ValueError for impossible dates and the like
        raise NetworkFileError(path, f"invalid YAML value: {exc}") from None


def _parse_json(path: Path, text: str) -> Any:
    try:
        return strict_json(text)
    except StrictError as exc:
        raise NetworkFileError(path, f"invalid JSON: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise NetworkFileError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from None
    except (ValueError, RecursionError) as exc:
        raise NetworkFileError(path, f"invalid JSON: {exc}") from None


def _line_map(text: str) -> dict[tuple, int]:
    """1-based line of every key and list item, by path, e.g. ``("layers", 2, "kernel") -> 9``.

    JSON is read as YAML for this too (the flow syntax is shared); it is best effort, so any
    failure just means errors are reported without a line.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except Exception:  # noqa: BLE001 - best effort only, the real parse already succeeded
        return {}
    lines: dict[tuple, int] = {}
    seen: set[int] = set()

    def walk(node, path: tuple) -> None:
        if node is None or id(node) in seen:  # aliases may make the tree cyclic
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    sub = path + (key.value,)
                    lines.setdefault(sub, key.start_mark.line + 1)
                    walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault(path + (i,), item.start_mark.line + 1)
                walk(item, path + (i,))

    if root is not None:
        lines[()] = root.start_mark.line + 1
        walk(root, ())
    return lines


# ----------------------------------------------------------------------------- YAML / JSON schema


@dataclass(frozen=True)
class _Where:
    """Builds errors that name the source, the line of a path and the field."""

    source: str
    lines: Mapping[tuple, int]

    def error(self, message: str, path: tuple = ()) -> NetworkFileError:
        line = None
        for cut in range(len(path), -1, -1):  # the deepest part of the path that has a line
            line = self.lines.get(path[:cut])
            if line is not None:
                break
        field = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))
        return NetworkFileError(self.source, message, line=line, field=field or None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(value: Any, minimum: int) -> int:
    if not _is_int(value):
        raise ValueError(f"must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"must be {'positive' if minimum == 1 else f'>= {minimum}'}, got {value}")
    return value


def _check_pair(value: Any, minimum: int) -> int | tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"must be an integer or a pair [h, w], got {len(value)} values")
        return (_check_int(value[0], minimum), _check_int(value[1], minimum))
    return _check_int(value, minimum)


def _check_field(name: str, value: Any, default: Any) -> Any:
    """Validate one layer field from a file; ``ValueError`` carries the message."""
    if value is None and default is None:
        return None  # e.g. a pool's stride or an activation left at "none"
    if name in ("out_channels", "out_features"):
        return _check_int(value, 1)
    if name in ("kernel", "stride"):
        return _check_pair(value, 1)
    if name == "padding":
        return _check_pair(value, 0)
    if name == "bias":
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if name in ("activation", "function"):
        if not isinstance(value, str) or value not in ACTIVATIONS:
            raise ValueError(f"must be one of {', '.join(ACTIVATIONS)}, got {value!r}")
        return value
    if name == "shape":
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"must be a non-empty list of positive integers, got {value!r}")
        return tuple(_check_int(v, 1) for v in value)
    # a field added to a layer spec later: pass it through, the spec validates it
    return tuple(value) if isinstance(value, list) else value


def _input_shape(value: Any, where: _Where) -> Shape:
    items = [value] if _is_int(value) else value
    if not isinstance(items, list) or not items:
        raise where.error(f"input must be a list of positive integers such as [3, 32, 32], got {value!r}", ("input",))
    for i, d in enumerate(items):
        if not _is_int(d) or d <= 0:
            path = ("input",) if _is_int(value) else ("input", i)
            raise where.error(f"input sizes must be positive integers, got {d!r}", path)
    return tuple(items)


def _auto_namer(explicit: set[str]):
    counters: dict[str, int] = {}

    def name(kind: str) -> str:
        prefix = _PREFIX.get(kind, kind)
        while True:  # skip numbers that the file uses as explicit names
            counters[prefix] = counters.get(prefix, 0) + 1
            candidate = f"{prefix}{counters[prefix]}"
            if candidate not in explicit:
                return candidate

    return name


def _layer(entry: Any, index: int, where: _Where) -> tuple[str | None, LayerSpec, list[str] | None]:
    """One layer mapping -> (explicit name or None, spec, explicit inputs or None)."""
    at = ("layers", index)
    if not isinstance(entry, dict):
        raise where.error(f"each layer must be a mapping with at least 'type', got {entry!r}", at)
    kind = entry.get("type")
    if kind is None:
        raise where.error("layer has no 'type'", at)
    if not isinstance(kind, str) or kind.strip().lower() not in FILE_LAYER_KINDS:
        raise where.error(f"unknown layer type {kind!r} (known: {', '.join(FILE_LAYER_KINDS)})", at + ("type",))
    cls = FILE_LAYER_KINDS[kind.strip().lower()]

    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise where.error(f"layer name must be a non-empty string, got {name!r}", at + ("name",))
    if name is not None and name.strip() == INPUT:
        raise where.error(f"layer name {INPUT!r} is reserved for the network input", at + ("name",))

    inputs = entry.get("inputs")
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) and i.strip() for i in inputs):
            raise where.error(f"inputs must be a layer name or a non-empty list of names, got {entry['inputs']!r}",
                              at + ("inputs",))
        inputs = [i.strip() for i in inputs]  # names are stripped too

    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in entry.items():
        if key in _NODE_KEYS:
            continue
        if key not in fields:
            allowed = ", ".join(list(_NODE_KEYS) + list(fields))
            raise where.error(f"{cls.kind} has no field {key!r} (allowed: {allowed})", at + (str(key),))
        f = fields[key]
        default = f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING
        try:
            kwargs[key] = _check_field(key, value, default)
        except ValueError as exc:
            raise where.error(f"{cls.kind} {key} {exc}", at + (key,)) from None
    missing = [f for f, spec in fields.items()
               if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
               and f not in kwargs]
    if missing:
        raise where.error(f"{cls.kind} needs {', '.join(missing)}", at + (missing[0],))
    try:
        layer = cls(**kwargs)
    except (NetworkError, TypeError, ValueError) as exc:
        raise where.error(f"bad {cls.kind} layer: {exc}", at) from None
    return (name.strip() if name is not None else None), layer, inputs


def network_from_dict(data: Any, source: str | Path = "<dict>",
                      lines: Mapping[tuple, int] | None = None) -> NetworkSpec:
    """Build a network from the YAML/JSON structure described in the module docstring.

    ``source`` names the origin in errors (a path, usually); ``lines`` maps key paths to
    1-based line numbers (as :func:`read_network_file` computes them) so errors say where.

    >>> network_from_dict({"input": [2], "layers": [{"type": "conv"}]}, source="n.yaml")
    Traceback (most recent call last):
    ...
    models.errors.NetworkFileError: n.yaml: field 'layers[0].type': unknown layer type 'conv' (known: conv2d, linear, maxpool, avgpool, globalavgpool, flatten, activation, batchnorm, add, lif_linear, lif_conv2d, embedding, attention, feedforward, lm_head, placeholder)
    """
    where = _Where(str(source), lines or {})
    if not isinstance(data, dict):
        raise where.error(f"the top level must be a mapping with {', '.join(_TOP_KEYS)}, got {type(data).__name__}")
    for key in data:
        if key not in _TOP_KEYS:
            raise where.error(f"unknown top-level key {key!r} (allowed: {', '.join(_TOP_KEYS)})", (str(key),))
    default_name = Path(str(source)).stem if source != "<dict>" else "network"
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise where.error(f"name must be a non-empty string, got {name!r}", ("name",))
    description = data.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise where.error(f"description must be a string, got {description!r}", ("description",))
    if "input" not in data:
        raise where.error("missing 'input' (the per-sample input shape, e.g. [3, 32, 32])", ("input",))
    input_shape = _input_shape(data["input"], where)
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise where.error(f"'layers' must be a non-empty list of layer mappings, got {layers!r}", ("layers",))

    parsed = [_layer(entry, i, where) for i, entry in enumerate(layers)]
    explicit = [n for n, _, _ in parsed if n is not None]
    auto = _auto_namer(set(explicit))
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, (given, layer, _) in enumerate(parsed):
        node_name = given if given is not None else auto(layer.kind)
        if node_name in seen:
            raise where.error(f"duplicate layer name {node_name!r} (also layers[{seen[node_name]}])",
                              ("layers", i, "name"))
        seen[node_name] = i
        names.append(node_name)

    nodes: list[Node] = []
    for i, (_, layer, inputs) in enumerate(parsed):
        srcs = tuple(inputs) if inputs is not None else ((names[i - 1],) if i else (INPUT,))
        for src in srcs:
            if src != INPUT and src not in seen:
                raise where.error(f"layer {names[i]!r} reads unknown input {src!r}", ("layers", i, "inputs"))
            if src == names[i]:
                raise where.error(f"layer {names[i]!r} reads itself", ("layers", i, "inputs"))
        nodes.append(Node(names[i], layer, srcs))
    return _checked_network(name.strip(), input_shape, nodes, description, where, seen)


def _checked_network(name: str, input_shape: Shape, nodes: list[Node], description: str, where: _Where,
                     index: Mapping[str, int]) -> NetworkSpec:
    """NetworkSpec validates too, but without lines; check here first so errors point at a layer."""
    graph = nx.DiGraph()
    graph.add_nodes_from([INPUT, *(n.name for n in nodes)])
    graph.add_edges_from((src, n.name) for n in nodes for src in n.inputs)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = [u for u, _ in nx.find_cycle(graph)]
        first = min(cycle, key=lambda n: index[n])
        raise where.error(f"the layers form a cycle: {' -> '.join(cycle + cycle[:1])}",
                          ("layers", index[first], "inputs"))
    shapes: dict[str, Shape] = {INPUT: input_shape}
    by_name = {n.name: n for n in nodes}
    for node_name in nx.lexicographical_topological_sort(graph, key=lambda n: index.get(n, -1)):
        if node_name == INPUT:
            continue
        node = by_name[node_name]
        try:
            shapes[node_name] = tuple(node.layer.output_shape([shapes[s] for s in node.inputs]))
        except NetworkError as exc:
            inputs = ", ".join(f"{s} {shapes[s]}" for s in node.inputs)
            raise where.error(f"layer {node_name!r} ({node.layer.kind}) cannot take its input ({inputs}): {exc}",
                              ("layers", index[node_name])) from None
    outputs = [n.name for n in nodes if graph.out_degree(n.name) == 0]
    if len(outputs) != 1:
        raise where.error(
            f"a network has exactly one output (a layer that nothing reads), found {len(outputs)}: "
            f"{', '.join(outputs)}; give the others' readers 'inputs'",
            ("layers", index[outputs[0]]),
        )
    try:
        return NetworkSpec(name, input_shape, tuple(nodes), description)
    except NetworkError as exc:  # anything the checks above did not foresee
        raise where.error(str(exc)) from None


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def network_to_dict(net: NetworkSpec) -> dict[str, Any]:
    """The file structure of ``net`` (plain dicts, lists, ints, strings; ready for YAML/JSON).

    Fields equal to their defaults are left out, and so are ``inputs`` that are just the
    previous layer, so :func:`network_from_dict` rebuilds an equal network.

    >>> from models.network import chain
    >>> from models.network.layers import Linear
    >>> network_to_dict(chain("t", (4,), [Linear(2, activation="relu")]))
    {'name': 't', 'input': [4], 'layers': [{'name': 'fc1', 'type': 'linear', 'out_features': 2, 'activation': 'relu'}]}
    """
    out: dict[str, Any] = {"name": net.name, "input": list(net.input_shape)}
    if net.description:
        out["description"] = net.description
    layers = []
    previous = INPUT
    for node in net.nodes:
        cls = FILE_LAYER_KINDS.get(node.layer.kind)
        if cls is not type(node.layer):
            raise NetworkError(f"network {net.name!r}: layer {node.name!r} of kind {node.layer.kind!r} "
                               "has no file representation")
        entry: dict[str, Any] = {"name": node.name, "type": node.layer.kind}
        for f in dataclasses.fields(node.layer):
            value = getattr(node.layer, f.name)
            if f.default is dataclasses.MISSING or value != f.default:
                entry[f.name] = _plain(value)
        if node.inputs != (previous,):
            entry["inputs"] = list(node.inputs)
        layers.append(entry)
        previous = node.name
    out["layers"] = layers
    return out


# ----------------------------------------------------------------------------- SCALE-Sim CSV

CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                "Num Filter", "Strides")
GEMM_COLUMNS = ("Layer", "M", "N", "K")
# a word each header cell must contain, so a file with swapped columns is refused, not misread
_CONV_HEADER_WORDS = ("layer", "ifmap", "ifmap", "filter", "filter", "channel", "filter", "stride")


@dataclass(frozen=True)
class _Row:
    line: int
    name: str
    layer: LayerSpec
    in_shape: Shape
    m: int | None = None


def _csv_cells(line: str) -> list[str]:
    return [c.strip() for c in line.split(",")]


def _csv_int(path: Path, cells: list[str], col: int, columns: tuple[str, ...], line: int) -> int:
    field = columns[col]
    if col >= len(cells) or cells[col] == "":
        raise NetworkFileError(path, f"row ends early: no value for {field!r} (truncated row?)", line=line, field=field)
    text = cells[col]
    if not re.fullmatch(r"[+-]?\d+", text):
        raise NetworkFileError(path, f"{field} must be an integer, got {text!r}", line=line, field=field)
    value = int(text)
    if value <= 0:
        raise NetworkFileError(path, f"{field} must be positive, got {value}", line=line, field=field)
    return value


def _scalar_or_pair(a: int, b: int) -> int | tuple[int, int]:
    return a if a == b else (a, b)


def _scalesim_padding(size: int, filt: int, stride: int) -> int:
    """Padding at which ``(size + 2p - filt) // stride + 1`` equals SCALE-Sim's rounded-up output size.

    >>> _scalesim_padding(224, 11, 4), _scalesim_padding(56, 3, 1), _scalesim_padding(56, 1, 2)
    (2, 0, 1)
    """
    short = -(size - filt) % stride  # what the last window lacks; 0 when the stride divides
    return (short + 1) // 2


def _pool_dim(have: int, want: int) -> tuple[int, int, int]:
    """(kernel, stride, padding) of a pooling that maps ``have`` to ``want`` (want <= have).

    stride = have/want rounded; kernel = what is left to cover exactly, which gives the
    usual pools (55 -> 27: 3/2, 224 -> 112: 2/2); when rounding up leaves no room, pad.
    """
    stride = max(1, (2 * have + want) // (2 * want))  # round half up, not to even
    kernel = have - (want - 1) * stride
    if kernel >= stride:
        return kernel, stride, 0
    pad = -(-(stride - kernel) // 2)
    return kernel + 2 * pad, stride, pad


def _glue(row: _Row, have: Shape) -> list[tuple[str, LayerSpec]]:
    """Element-wise nodes between the previous output ``have`` and the row's declared input."""
    want = row.in_shape
    if have == want:
        return []
    if isinstance(row.layer, Linear):
        if numel(have) == numel(want):
            return []  # Linear flattens: a 6x6x256 map feeds a 9216-input fc row as is
        if len(have) == 3 and have[0] == want[0]:
            return [("gap", GlobalAvgPool())]
        return [("in", Placeholder(want))]
    if len(have) == 3 and have[0] == want[0]:
        (_, oh, ow), (_, ih, iw) = have, want
        if ih <= oh and iw <= ow:
            (kh, sh, ph), (kw, sw, pw) = _pool_dim(oh, ih), _pool_dim(ow, iw)
            pool = MaxPool2d(_scalar_or_pair(kh, kw), _scalar_or_pair(sh, sw), _scalar_or_pair(ph, pw))
            if pool.output_shape([have]) == want:  # by construction; checked so a slip cannot mis-size
                return [("pool", pool)]
        elif ih >= oh and iw >= ow:
            return [("pad", Placeholder(want))]
    return [("in", Placeholder(want))]


def _unique(name: str, taken: set[str]) -> str:
    candidate, k = name, 1
    while candidate in taken or candidate == INPUT:
        k += 1
        candidate = f"{name}_{k}"
    taken.add(candidate)
    return candidate


def read_scalesim_csv(path: str | Path, text: str | None = None) -> NetworkSpec:
    """Read a SCALE-Sim topology CSV (convolution or GEMM format); see the module docstring.

    ``text`` is the file's content when already read; the path still names the network
    (its stem) and the errors.

    >>> net = read_scalesim_csv("t.csv", text="Layer, M, N, K,\\nA, 8, 4, 2,\\nB, 8, 3, 4,\\n")
    >>> [(n.name, net.shapes[n.name]) for n in net.nodes], net.total_macs()
    ([('A', (4,)), ('B', (3,))], 20)
    """
    path = Path(path)
    if text is None:
        text = _read_text(path, empty_line=1)
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.strip().strip(",").strip()), None)
    if header_at is None:
        raise NetworkFileError(path, "the file is empty", line=1)
    header = _csv_cells(lines[header_at])
    words = [h.lower() for h in header]
    header_line = header_at + 1
    if len(words) >= 4 and [w.replace(" ", "") for w in words[1:4]] == ["m", "n", "k"]:
        gemm, columns = True, GEMM_COLUMNS
        stride_w_col = None
    elif len(words) >= 8 and all(w in h for w, h in zip(_CONV_HEADER_WORDS, words)):
        gemm, columns = False, CONV_COLUMNS
        stride_w_col = 8 if len(words) > 8 and "stride" in words[8] else None
    else:
        raise NetworkFileError(
            path,
            "not a SCALE-Sim topology header: expected 'Layer name, IFMAP Height, IFMAP Width, Filter Height, "
            f"Filter Width, Channels, Num Filter, Strides,' or 'Layer, M, N, K', got {excerpt(lines[header_at].strip())}",
            line=header_line, field="header",
        )

    rows: list[_Row] = []
    taken: set[str] = set()
    for i in range(header_at + 1, len(lines)):
        line_no = i + 1
        cells = _csv_cells(lines[i])
        if not any(cells) or cells[0].startswith("#"):
            continue  # blank rows and ",,,,," separators occur in SCALE-Sim's own files
        name = _unique(cells[0] or f"row{line_no}", taken)

        def value(col: int) -> int:
            return _csv_int(path, cells, col, columns, line_no)

        if gemm:
            m, n, k = value(1), value(2), value(3)
            rows.append(_Row(line_no, name, Linear(n, bias=False), (k,), m))
            continue
        ih, iw, fh, fw, c, nf, sh = (value(col) for col in range(1, 8))
        sw = sh
        if stride_w_col is not None and stride_w_col < len(cells) and cells[stride_w_col]:
            sw = _csv_int(path, cells, stride_w_col, columns + ("Stride width",), line_no)
        if fh > ih:
            raise NetworkFileError(path, f"Filter Height {fh} is larger than IFMAP Height {ih}",
                                   line=line_no, field="Filter Height")
        if fw > iw:
            raise NetworkFileError(path, f"Filter Width {fw} is larger than IFMAP Width {iw}",
                                   line=line_no, field="Filter Width")
        if (ih, iw, fh, fw) == (1, 1, 1, 1):
            rows.append(_Row(line_no, name, Linear(nf, bias=False), (c,)))
        else:
            padding = _scalar_or_pair(_scalesim_padding(ih, fh, sh), _scalesim_padding(iw, fw, sw))
            conv = Conv2d(nf, kernel=_scalar_or_pair(fh, fw), stride=_scalar_or_pair(sh, sw), padding=padding,
                          bias=False)
            rows.append(_Row(line_no, name, conv, (c, ih, iw)))
    if not rows:
        raise NetworkFileError(path, "no layer rows after the header", line=header_line)

    nodes: list[Node] = []
    glue_count: dict[str, int] = {}
    previous, have = INPUT, rows[0].in_shape
    for row in rows:
        for suffix, layer in _glue(row, have):
            glue_name = _unique(f"{row.name}_{suffix}", taken)
            nodes.append(Node(glue_name, layer, (previous,)))
            previous = glue_name
            glue_count[suffix] = glue_count.get(suffix, 0) + 1
        nodes.append(Node(row.name, row.layer, (previous,)))
        try:
            have = row.layer.output_shape([row.in_shape])
        except NetworkError as exc:
            raise NetworkFileError(path, str(exc), line=row.line) from None
        previous = row.name

    if gemm:
        ms = sorted({row.m for row in rows})
        span = str(ms[0]) if len(ms) == 1 else f"{ms[0]}..{ms[-1]} (differs per row)"
        description = f"SCALE-Sim GEMM topology {path.name}: {len(rows)} rows, M (batch rows) = {span}"
    else:
        description = f"SCALE-Sim topology {path.name}: {len(rows)} rows"
    if glue_count:
        described = {"pool": "pool", "gap": "global pool", "pad": "padding", "in": "independent-row"}
        description += "; glue: " + ", ".join(f"{n} {described[s]}" for s, n in glue_count.items())
    try:
        return NetworkSpec(path.stem, rows[0].in_shape, tuple(nodes), description)
    except NetworkError as exc:  # by construction unreachable; keep the file's name on it anyway
        raise NetworkFileError(path, str(exc)) from None


__all__ = [
    "Placeholder", "FILE_LAYER_KINDS", "CONV_COLUMNS", "GEMM_COLUMNS",
    "read_network_file", "read_scalesim_csv", "network_from_dict", "network_to_dict",
]
