"""Bad-input campaign over the command line and the file readers.

:data:`CASES` is the campaign: one row per bad input (a description, the ``layerpipe``
arguments, the files they read, and a fragment the error message must contain). Every row
must end with exit code 2 and exactly one line on stderr that contains the fragment and no
``Traceback``, with nothing on stdout (no half-printed wrong answer), within
:data:`SECONDS` (no hang) and :data:`MEMORY_BYTES` of allocations (no exhaustion). Rows run in-process through :func:`simulator.cli.main`;
:data:`SUBPROCESS` rows also run through the installed ``layerpipe`` console script, under
a memory cap, to show that nothing reaches the terminal but the one line.

:data:`API_CASES` are the same mistakes made through the Python API: each must raise the
typed exception (a :class:`models.errors.LayerPipeError` subclass) the command line turns
into that line.

Files are written into a fresh temporary directory that is the working directory of the
run; a file whose content is :data:`DIR` is created as a directory instead.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass, field

import pytest

from models.errors import (
    DeadlockError,
    HardwareError,
    LayerPipeError,
    NetworkError,
    NetworkFileError,
    ScheduleError,
    TrainingError,
    UnknownNetworkError,
)
from simulator.cli import main

#: no row may take longer than this (a hang is a failure, not a stuck test run)
SECONDS = 30
#: nor allocate more than this (Python allocations, tracemalloc's peak): refusing an input is cheap
MEMORY_BYTES = 256 * 2**20
DIR = object()  # a "file" that is a directory
FIFO = object()  # a named pipe: reading it would wait for a writer forever
DEV_ZERO = object()  # a symlink to /dev/zero: reading it would never end

LINEAR = b"input: [4]\nlayers:\n  - {type: linear, out_features: 2}\n"
CONV_HEADER = b"Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
DEEP_MLP = "mlp:" + "-".join(["64"] * 301)  # 300 weight layers


@dataclass(frozen=True)
class Case:
    description: str
    argv: tuple[str, ...]
    fragment: str
    files: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.description


def case(description: str, argv: str | list, fragment: str, **files) -> Case:
    args = tuple(argv.split()) if isinstance(argv, str) else tuple(argv)
    return Case(description, args, fragment, {k.replace("__", "."): v for k, v in files.items()})


def yaml_file(text: str) -> bytes:
    return text.encode()


# --------------------------------------------------------------------------- the campaign

CASES: list[Case] = [
    # ---- network files: empty, truncated, not UTF-8
    case("empty YAML network file", "describe net.yaml", "the file is empty", net__yaml=b""),
    case("blank JSON network file", "describe net.json", "the file is empty", net__json=b"  \n\n"),
    case("empty CSV topology", "describe net.csv", "the file is empty", net__csv=b""),
    case("truncated YAML (cut mid-mapping)", "describe net.yaml", "invalid YAML",
         net__yaml=b"input: [4]\nlayers:\n  - {type: linear, out_feat"),
    case("truncated JSON (cut mid-list)", "describe net.json", "invalid JSON",
         net__json=b'{"input": [4], "layers": [{"type": "linear", "out_features": 2}'),
    case("truncated CSV row", "describe net.csv", "row ends early",
         net__csv=CONV_HEADER + b"c1, 8, 8, 3, 3, 1, 4, 1,\nc2, 6, 6, 3"),
    case("CSV with a header and no rows", "describe net.csv", "no layer rows", net__csv=CONV_HEADER),
    case("non-UTF-8 bytes in a YAML file", "describe net.yaml", "not UTF-8",
         net__yaml=LINEAR + b"  \xff\xfe bad\n"),
    case("non-UTF-8 bytes in a JSON file", "describe net.json", "not UTF-8", net__json=b'{"input": [4], \xc3\x28}'),
    case("non-UTF-8 CSV (UTF-16 byte-order mark)", "describe net.csv", "not UTF-8", net__csv=b"\xff\xfe\x00\x00"),
    case("binary garbage with a .yaml name", "describe net.yaml", "not UTF-8", net__yaml=bytes(range(256))),
    # ---- network files: wrong types
    case("top level is a list", "describe net.json", "top level must be a mapping", net__json=b"[1, 2, 3]"),
    case("top level is a scalar", "describe net.yaml", "top level must be a mapping", net__yaml=b"42\n"),
    case("out_features is a string", "describe net.yaml", "must be an integer, got 'ten'",
         net__yaml=b"input: [4]\nlayers:\n  - {type: linear, out_features: ten}\n"),
    case("out_features is a float", "describe net.yaml", "must be an integer, got 2.5",
         net__yaml=b"input: [4]\nlayers:\n  - {type: linear, out_features: 2.5}\n"),
    case("out_features is a boolean", "describe net.yaml", "must be an integer, got True",
         net__yaml=b"input: [4]\nlayers:\n  - {type: linear, out_features: true}\n"),
    case("kernel is a list of three", "describe net.yaml", "pair",
         net__yaml=b"input: [1, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 2, kernel: [1, 2, 3]}\n"),
    case("layers is a mapping", "describe net.yaml", "'layers' must be a non-empty list",
         net__yaml=b"input: [4]\nlayers: {type: linear}\n"),
    case("a layer is a string", "describe net.yaml", "each layer must be a mapping",
         net__yaml=b"input: [4]\nlayers: [linear]\n"),
    case("input is a string", "describe net.yaml", "input must be a list of positive integers",
         net__yaml=b"input: big\nlayers:\n  - {type: linear, out_features: 2}\n"),
    case("activation is a number", "describe net.yaml", "must be one of",
         net__yaml=b"input: [4]\nlayers:\n  - {type: linear, out_features: 2, activation: 3}\n"),
    case("bias is a string", "describe net.yaml", "must be true or false",
         net__yaml=b"input: [4]\nlayers:\n  - {type: linear, out_features: 2, bias: maybe}\n"),
    # ---- network files: negative, zero, inconsistent sizes
    case("negative out_features", "describe net.yaml", "must be positive, got -3",
         net__yaml=b"input: [4]\nlayers:\n  - {type: linear, out_features: -3}\n"),
    case("zero out_features", "describe net.yaml", "must be positive, got 0",
         net__yaml=b"input: [4]\nlayers:\n  - {type: linear, out_features: 0}\n"),
    case("zero input size", "describe net.yaml", "input sizes must be positive integers, got 0",
         net__yaml=b"input: [0]\nlayers:\n  - {type: linear, out_features: 2}\n"),
    case("negative input size (JSON)", "describe net.json", "input sizes must be positive integers, got -4",
         net__json=b'{"input": [-4], "layers": [{"type": "linear", "out_features": 2}]}'),
    case("negative padding", "describe net.yaml", "must be >= 0",
         net__yaml=b"input: [1, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 2, padding: -1}\n"),
    case("zero stride", "describe net.yaml", "must be positive",
         net__yaml=b"input: [1, 8, 8]\nlayers:\n  - {type: conv2d, out_channels: 2, stride: 0}\n"),
    case("kernel larger than the input", "describe net.yaml", "does not fit",
         net__yaml=b"input: [1, 4, 4]\nlayers:\n  - {type: conv2d, out_channels: 2, kernel: 9}\n"),
    case("convolution on a vector", "describe net.yaml", "needs a (C, H, W) input",
         net__yaml=b"input: [4]\nlayers:\n  - {type: conv2d, out_channels: 2}\n"),
    case("add of two different shapes", "describe net.yaml", "equal shapes",
         net__yaml=b"input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 3}\n"
                   b"  - {name: b, type: linear, out_features: 5, inputs: [input]}\n"
                   b"  - {type: add, inputs: [a, b]}\n  - {type: linear, out_features: 2}\n"),
    case("CSV: negative filter count", "describe net.csv", "must be positive",
         net__csv=CONV_HEADER + b"c1, 8, 8, 3, 3, 1, -4, 1,\n"),
    case("CSV: zero stride", "describe net.csv", "Strides must be positive, got 0",
         net__csv=CONV_HEADER + b"c1, 8, 8, 3, 3, 1, 4, 0,\n"),
    case("CSV: filter larger than the map", "describe net.csv", "larger than IFMAP Height",
         net__csv=CONV_HEADER + b"c1, 2, 2, 3, 3, 1, 4, 1,\n"),
    case("CSV: a letter where a number goes", "describe net.csv", "K must be an integer, got 'x'",
         net__csv=b"Layer, M, N, K,\nA, 8, 4, x,\n"),
    case("CSV: not a SCALE-Sim header", "describe net.csv", "not a SCALE-Sim topology header",
         net__csv=b"foo,bar\n1,2\n"),
    # ---- network files: unknown names, structure
    case("unknown layer type", "describe net.yaml", "unknown layer type 'dense'",
         net__yaml=b"input: [4]\nlayers:\n  - {type: dense, out_features: 2}\n"),
    case("unknown layer field (typo)", "describe net.yaml", "has no field 'units'",
         net__yaml=b"input: [4]\nlayers:\n  - {type: linear, units: 2}\n"),
    case("unknown top-level key", "describe net.yaml", "unknown top-level key 'layer'",
         net__yaml=b"input: [4]\nlayer:\n  - {type: linear, out_features: 2}\n"),
    case("input from an unknown layer", "describe net.yaml", "reads unknown input 'nope'",
         net__yaml=b"input: [4]\nlayers:\n  - {type: linear, out_features: 2, inputs: [nope]}\n"),
    case("duplicate layer names", "describe net.yaml", "duplicate layer name 'a'",
         net__yaml=b"input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 3}\n"
                   b"  - {name: a, type: linear, out_features: 2}\n"),
    case("missing input shape", "describe net.yaml", "missing 'input'",
         net__yaml=b"layers:\n  - {type: linear, out_features: 2}\n"),
    case("no layers", "describe net.yaml", "non-empty list", net__yaml=b"input: [4]\nlayers: []\n"),
    case("two outputs", "describe net.yaml", "exactly one output",
         net__yaml=b"input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 3}\n"
                   b"  - {name: b, type: linear, out_features: 2, inputs: [input]}\n"),
    case("network without weights", "describe net.yaml", "no layer with weights",
         net__yaml=b"input: [1, 4, 4]\nlayers:\n  - {type: maxpool}\n"),
    case("cyclic network file", "describe net.yaml", "the layers form a cycle: a -> b -> a",
         net__yaml=b"input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 4, inputs: [b]}\n"
                   b"  - {name: b, type: linear, out_features: 4, inputs: [a]}\n"
                   b"  - {name: c, type: linear, out_features: 2, inputs: [b]}\n"),
    case("layer that reads itself", "describe net.yaml", "reads itself",
         net__yaml=b"input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 4, inputs: [a]}\n"),
    case("cyclic network through simulate", "simulate net.yaml -s layerpipe -p 2 -n 4", "form a cycle",
         net__yaml=b"input: [4]\nlayers:\n  - {name: a, type: linear, out_features: 4, inputs: [b]}\n"
                   b"  - {name: b, type: linear, out_features: 2, inputs: [a]}\n"),
    case("YAML alias loop", "describe net.yaml", "aliases (*name) are not allowed", net__yaml=b"a: &a [*a]\n"),
    case("network file that is a directory", "describe net.yaml", "cannot read the file", net__yaml=DIR),
    case("network file that does not exist", "describe nothere.yaml", "no such file"),
    case("network name with an unknown suffix", "describe net.txt", "neither a zoo network", net__txt=LINEAR),
    case("unknown zoo network", "describe resnet1000", "neither a zoo network"),
    case("mlp name with a zero size", "simulate mlp:4-0-2 -s layerpipe", "bad mlp name"),
    case("mlp name with letters", "describe mlp:4-x-2", "bad mlp name"),
    case("mlp name with one size", "describe mlp:4", "bad mlp name"),
    # ---- command-line values: unknown names, wrong types, negative and zero sizes
    case("unknown subcommand", "frobnicate", "invalid choice"),
    case("unknown option", "simulate mlp -s layerpipe --frobnicate", "unrecognized arguments"),
    case("unknown schedule", "simulate mlp -s foo", "unknown schedule 'foo'"),
    case("compare: unknown schedule in a list", "compare mlp --schedules pipedream,nope", "unknown schedule(s) nope"),
    case("compare: empty schedule list", "compare mlp --schedules ,", "(none given)"),
    case("processors not a number", "simulate mlp -s layerpipe -p abc", "invalid int value: 'abc'"),
    case("zero processors", "simulate mlp -s layerpipe -p 0", "--processors must be a positive integer, got 0"),
    case("negative processors", "trace mlp -s layerpipe -p -3 -o t.json", "--processors must be a positive integer"),
    case("zero minibatches", "simulate mlp -s layerpipe -n 0", "--minibatches must be a positive integer, got 0"),
    case("negative minibatches", "compare mlp -n -1", "--minibatches must be a positive integer, got -1"),
    case("zero batch", "simulate mlp -s layerpipe -b 0", "--batch must be a positive integer, got 0"),
    case("negative batch (describe)", "describe mlp --batch -3", "batch size must be a positive integer"),
    case("float batch", "describe mlp --batch 2.5", "invalid int value: '2.5'"),
    case("zero micro-batches", "simulate mlp -s gpipe -m 0", "--microbatches must be a positive integer, got 0"),
    case("micro-batches that do not divide the batch", "simulate mlp -s 1f1b -p 2 -m 64", "cannot be split into 64"),
    case("hardware: zero MACs", "simulate mlp -s layerpipe --hardware mac:0", "macs_per_cycle must be an integer >= 1"),
    case("hardware: zero systolic rows", "simulate mlp -s layerpipe --hardware systolic:0x4", "rows must be an integer >= 1"),
    case("hardware: unknown dataflow", "describe mlp --hardware systolic:32x32:xx", "unknown dataflow 'xx'"),
    case("hardware: unknown kind", "simulate mlp -s layerpipe --hardware quantum:4", "unknown processor kind 'quantum'"),
    case("hardware: empty", ["simulate", "mlp", "-s", "layerpipe", "--hardware", ""], "empty hardware description"),
    case("hardware: zero lanes", "simulate mlp -s layerpipe --hardware mac:4:lanes=0", "vector_lanes must be an integer >= 1"),
    case("hardware: unknown option", "simulate mlp -s layerpipe --hardware mac:4:speed=2", "unknown option 'speed'"),
    case("link: zero bandwidth", "simulate mlp -s layerpipe --link 1,0", "bytes per cycle must be a number > 0"),
    case("link: negative latency", "simulate mlp -s layerpipe --link=-1,4", "latency must be a non-negative integer"),
    case("link: NaN bandwidth", "simulate mlp -s layerpipe --link 1,nan", "got 'nan'"),
    case("link: not a pair", "simulate mlp -s layerpipe --link x", "expected two comma-separated numbers"),
    case("unknown topology", "simulate mlp -s layerpipe --topology star", "invalid choice: 'star'"),
    case("input shape with a trailing x", "simulate mlp -s layerpipe --input 3x", "--input must look like CxHxW"),
    case("zero input shape", "simulate mlp -s layerpipe --input 0", "--input sizes must be positive"),
    case("input shape too small for the network", "describe lenet5 --input 1x2x2", "does not fit"),
    case("layer groups out of order", "simulate mlp -s layerpipe2 --groups 3-1", "contiguous ranges"),
    case("layer groups beyond the network", "simulate mlp -s layerpipe2 --groups 1-9", "network has 3 weight layers"),
    case("zero layer groups", "simulate mlp -s layerpipe2 --groups 0", "number of groups must be positive"),
    case("unknown memory model", "simulate mlp -s layerpipe2 --memory disk", "invalid choice: 'disk'"),
    case("unknown parallelism mode", "compare mlp -p 2 --parallelism data", "invalid choice: 'data'"),
    case("memory capacity that is not a size", "compare mlp -p 2 --memory-capacity lots", "memory size must be"),
    case("negative memory capacity", "simulate mlp -s pipedream --memory-capacity=-4GB", "memory size must be"),
    case("memory capacity in an unknown unit", "trace mlp -s pipedream -p 2 --memory-capacity 4GX", "memory size must be"),
    case("replication forced in a pipeline-only mode", "simulate mlp -s pipedream -p 2 --parallelism pipeline --replicate",
         "--parallelism pipeline forbids"),
    case("nothing fits in memory", "compare mlp -p 2 --memory-capacity 1kB", "nothing fits in 1000 B per processor"),
    case("the one schedule does not fit", "simulate mlp -s layerpipe -p 3 --memory-capacity 60kB",
         "nothing fits in 58.6 KiB per processor"),
    case("explain a method that plans no stages", "explain mlp -s sequential -p 2", "no pipeline stages"),
    case("explain into an unknown plot format", "explain mlp -p 2 --plot l.bmp", "cannot write a plot to 'l.bmp'"),
    case("explain when the baseline does not fit", "explain mlp -p 3 --memory-capacity 60kB", "pipedream does not fit"),
    # ---- outputs that cannot be written
    case("trace to an unknown format", "trace mlp -s pipedream -p 2 -n 2 -o t.txt", "use a name ending in .json"),
    case("trace into a missing directory", "trace mlp -s pipedream -p 2 -n 2 -o nodir/t.json", "does not exist"),
    case("trace onto a directory", "trace mlp -s pipedream -p 2 -n 2 -o t.json", "it is a directory", t__json=DIR),
    case("trace onto an unwritable place", "trace mlp -s pipedream -p 2 -n 2 -o /proc/t.jsonl", "cannot write"),
    case("gantt onto a directory", "gantt mlp -s pipedream -p 2 -n 2 -o g.png", "it is a directory", g__png=DIR),
    case("gantt onto an unwritable place", "gantt mlp -s pipedream -p 2 -n 2 -o /proc/g.png", "cannot write a plot"),
    case("gantt window that ends before it starts", "gantt mlp -s pipedream -p 2 -n 2 -o g.png --start 5 --end 1",
         "must be after --start"),
    case("gantt to an unknown format", "gantt mlp -s pipedream -p 2 -n 2 -o g.bmp", "cannot write a plot to 'g.bmp'"),
    case("plot onto a directory", "plot memory mlp --processors 2 -o p.png", "it is a directory", p__png=DIR),
    # ---- absurdly large sizes: refused by the limits before anything is built
    case("absurd minibatches", "simulate lenet5 -s layerpipe -p 4 -n 100000000",
         "would simulate 2,300,000,000 tasks"),
    case("trace too large to keep in memory", "trace lenet5 -s layerpipe -p 4 -n 200000 -o t.json",
         "with the trace kept in memory"),
    case("absurd processor count", "compare mlp -p 100000", "a full platform of 100,000 processors"),
    case("ring too large for its route table", "simulate mlp -s layerpipe -p 1024 --topology ring -n 4",
         "use --topology full"),
    case("replicas too many to exchange weights", "compare mlp -p 3000 -n 4 --link none --topology ring",
         "weight exchanges between its replicas"),
    case("prime batch: one micro-batch per sample", "simulate mlp -s gpipe -p 3 -b 1000000007 -n 4",
         "has no divisor from 3"),
    case("network too deep to plan on many processors", ["simulate", DEEP_MLP, "-s", "layerpipe", "-p", "64", "-n", "4"],
         "most of it planning"),
    case("absurd processors for train --schedule", "train mlp --schedule pipedream --processors 100000",
         "a full platform of 100,000 processors"),
    case("absurd devices for dho2", "dho2 --devices 100000", "expected an integer from 1 to 4,096"),
    # ---- train and dho2
    case("train: NaN learning rate", "train mlp --lr nan --epochs 1", "finite lr > 0, 0 <= momentum < 1"),
    case("train: infinite learning rate", "train mlp --lr inf --epochs 1", "got inf"),
    case("train: negative learning rate", "train mlp --lr -1 --epochs 1", "got -1.0"),
    case("train: NaN learning rate for Adam", "train mlp --optimizer adam --lr nan --epochs 1", "Adam needs"),
    case("train: negative epochs", "train mlp --epochs -1", "expected an integer from 1 to 1,000, got '-1'"),
    case("train: zero batch", "train mlp --batch-size 0", "expected an integer from 1 to 100,000, got '0'"),
    case("train: delays that are not numbers", "train mlp --delays 1,x", "delays must be comma-separated integers"),
    case("train: wrong number of delays", "train mlp --delays 1,2 --epochs 1", "got 2 delays for a network with 3"),
    case("train: momentum above 1", "train mlp --momentum 5 --epochs 1", "0 <= momentum < 1"),
    case("train: EMA beta above 1", "train mlp --ema-beta 2 --epochs 1 --compensation ema --delays 1,1,0",
         "EMA beta must be in [0, 1)"),
    case("train: unknown schedule", "train mlp --schedule nope --processors 2", "unknown schedule 'nope'"),
    case("train: schedule without processors", "train mlp --schedule pipedream", "--schedule needs --processors"),
    case("train: cyclic network file", "train net.yaml --epochs 1", "form a cycle",
         net__yaml=b"input: [64]\nlayers:\n  - {name: a, type: linear, out_features: 4, inputs: [b]}\n"
                   b"  - {name: b, type: linear, out_features: 2, inputs: [a]}\n"),
    # ---- tta
    case("tta: unknown dataset", "tta mlp --dataset cifar --target 0.9", "invalid choice: 'cifar'"),
    case("tta: target above 1", "tta mlp --target 1.5", "--target must be an accuracy in (0, 1]"),
    case("tta: NaN target", "tta mlp --target nan", "--target must be an accuracy in (0, 1]"),
    case("tta: unknown schedule", "tta mlp --target 0.9 --schedules nope", "unknown schedule 'nope'"),
    case("tta: unknown compensation", "tta mlp --target 0.9 --schedules pipedream:magic", "unknown compensation 'magic'"),
    case("tta: absurd seeds", "tta mlp --target 0.9 --seeds 100000", "--seeds must be 1..20"),
    case("tta: plot into a missing folder", "tta mlp --target 0.9 --plot nowhere/tta.png", "does not exist"),
    case("tta: diverging training", "tta mlp --target 0.9 -p 2 --lr 1e30 --seeds 1 --epochs 1 --schedules pipedream",
         "training diverged for every schedule"),
    case("tta: unreachable target", "tta mlp --target 1.0 -p 2 --seeds 1 --epochs 1 --schedules gpipe",
         "no schedule reached 100.0%"),
    case("train: staleness replay without a schedule is nominal; a bad mode is refused",
         "train mlp --staleness later", "invalid choice: 'later'"),
    case("dho2: zero devices", "dho2 --devices 0", "expected an integer from 1 to 4,096, got '0'"),
    case("dho2: infinite target", "dho2 --devices 2 --quick --target inf", "--target must be a finite number, got inf"),
    case("dho2: NaN target", "dho2 --devices 2 --quick --target nan", "--target must be a finite number, got nan"),
    case("dho2: no eigenpairs", "dho2 --devices 2 --k 0 --quick --max-steps 5", "needs k + l >= 1"),
    case("dho2: unknown network", "dho2 --devices 2 --network nope", "neither a zoo network"),
    case("dho2: more eigenpairs than parameters", "dho2 logreg -p 2 --k 700 --quick --max-steps 5",
         "cannot keep k=700 largest and l=0 smallest of 650 Ritz pairs"),
    case("dho2: refresh in steps and in epochs", "dho2 -p 2 --refresh 5 --refresh-epochs 2", "not allowed with argument"),
    case("dho2: infinite refresh epochs", "dho2 -p 2 --refresh-epochs inf", "expected a finite number above 0"),
    case("dho2: a refresh period beyond any budget", "dho2 -p 2 --quick --refresh-epochs 1e9 --max-steps 5",
         "outside 1 .. 1,000,000 steps"),
    # ---- sweeps: experiment files and result files
    case("sweep: empty experiment file", "sweep e.yaml -j 1 -o s.csv", "no networks given", e__yaml=b""),
    case("sweep: non-UTF-8 experiment file", "sweep e.yaml -j 1 -o s.csv", "not UTF-8", e__yaml=b"\xff\xfe"),
    case("sweep: truncated YAML experiment", "sweep e.yaml -j 1 -o s.csv", "malformed YAML", e__yaml=b"networks: [mlp\n"),
    case("sweep: truncated TOML experiment", "sweep e.toml -j 1 -o s.csv", "malformed TOML", e__toml=b"networks = ["),
    case("sweep: unknown key", "sweep e.yaml -j 1 -o s.csv", "unknown key 'bogus'", e__yaml=b"networks: [mlp]\nbogus: 1\n"),
    case("sweep: backwards processor range", "sweep e.yaml -j 1 -o s.csv", "empty range '9-2'",
         e__yaml=b"networks: [mlp]\nprocessors: '9-2'\n"),
    case("sweep: unknown schedule", "sweep e.yaml -j 1 -o s.csv", "unknown schedule(s) nope",
         e__yaml=b"networks: [mlp]\nschedules: [nope]\n"),
    case("sweep: experiment file that does not exist", "sweep nothere.yaml", "cannot read experiment file"),
    case("sweep: zero processors", "sweep --networks mlp --processors 0 -j 1 -o s.csv", "processors must be positive"),
    case("sweep: zero jobs", "sweep --networks mlp --processors 2 -j 0", "--jobs must be a positive integer"),
    case("sweep: results onto a directory", "sweep --networks mlp --processors 2 -j 1 -o s.csv", "is a directory",
         s__csv=DIR),
    case("sweep: results onto an unwritable place", "sweep --networks mlp --processors 2 -j 1 -o /proc/s.csv",
         "cannot write '/proc/s.csv'"),
    case("sweep: results into a CSV of other data", "sweep --networks mlp --processors 2 -j 1 -o s.csv",
         "holds other columns", s__csv=b"a,b\n1,2"),
    case("sweep: results into a text file without newline", "sweep --networks mlp --processors 2 -j 1 -o s.csv",
         "not a results file", s__csv=b"hello"),
    case("sweep: results into a non-UTF-8 file", "sweep --networks mlp --processors 2 -j 1 -o s.csv",
         "not a results file", s__csv=b"a\xff\n"),
    case("plot: non-UTF-8 results file", "plot speedup r.csv -o p.png", "not UTF-8", r__csv=b"a\xff\n"),
    # ---- uniform stages, transformer layers, chunked schedules
    case("uniform spec with a superscript digit", "describe uniform:p=\u00b2,f=1,b=1,w=1", "at most 16 digits"),
    case("uniform spec of 40 digits", "describe uniform:p=2,f=" + "9" * 40 + ",b=1,w=1", "at most 16 digits"),
    case("uniform spec without w", "describe uniform:p=2,f=1,b=1", "needs w"),
    case("uniform spec with a key twice", "describe uniform:p=2,f=1,f=2,b=1,w=1", "f is given twice"),
    case("uniform spec with an unknown key", "describe uniform:p=2,f=1,b=1,w=1,x=3", "expected KEY=VALUE"),
    case("uniform spec of zero stages", "describe uniform:p=0,f=1,b=1,w=1", "p must be in [1, 4096]"),
    case("uniform spec of stages that take no time", "describe uniform:p=2,f=0,b=0,w=0", "f + b + w > 0"),
    case("uniform spec with comm and another --link", "simulate uniform:p=2,f=1,b=1,w=1,comm=5 -s 1f1b --link 100,16",
         "states its hops' cost (link 5,inf)"),
    case("uniform spec with an input shape", "simulate uniform:p=2,f=1,b=1,w=1 -s 1f1b --input 4", "takes no --input"),
    case("attention heads that do not divide the hidden size", "describe net.yaml", "5 heads do not divide the hidden size 64",
         net__yaml=b"input: [32]\nlayers:\n  - {type: embedding, vocab: 10, hidden: 64}\n"
                   b"  - {type: attention, heads: 5}\n"),
    case("attention on token ids", "describe net.yaml", "needs a (sequence, hidden) input",
         net__yaml=b"input: [32]\nlayers:\n  - {type: attention, heads: 4}\n"),
    case("gpt2 with a zero sequence length", "describe gpt2 --input 0", "--input sizes must be positive"),
    # ---- files that are not text a person wrote; numbers that are not numbers
    case("YAML aliases (a billion-laughs file)", "describe net.yaml", "aliases (*name) are not allowed",
         net__yaml=b"input: [4]\na: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nlayers:\n  - {type: linear, out_features: 2}\n"),
    case("duplicate key in a YAML network", "describe net.yaml", "duplicate key 'input'",
         net__yaml=b"input: [4]\ninput: [8]\nlayers:\n  - {type: linear, out_features: 2}\n"),
    case("duplicate key in a JSON network", "describe net.json", "duplicate key 'out_features'",
         net__json=b'{"input": [4], "layers": [{"type": "linear", "out_features": 2, "out_features": 3}]}'),
    case("duplicate key in an experiment file", "sweep e.yaml -j 1 -o s.csv", "duplicate key 'networks'",
         e__yaml=b"networks: [mlp]\nnetworks: [lenet5]\n"),
    case("YAML aliases in an experiment file", "sweep e.yaml -j 1 -o s.csv", "aliases (*name) are not allowed",
         e__yaml=b"networks: &n [mlp]\nschedules: *n\n"),
    case("network file that is a FIFO", "describe net.yaml", "it is a FIFO, not a regular file", net__yaml=FIFO),
    case("network file linked to /dev/zero", "describe net.yaml", "it is a device, not a regular file",
         net__yaml=DEV_ZERO),
    case("experiment file linked to /dev/zero", "sweep e.yaml -j 1 -o s.csv", "it is a device, not a regular file",
         e__yaml=DEV_ZERO),
    case("network file larger than 8 MiB", "describe net.yaml", "larger than 8 MiB",
         net__yaml=b"input: [4]\n" + b"# padding\n" * (900 * 1024)),
    case("superscript digit as MACs per cycle", "simulate mlp -s pipedream --hardware mac:\u00b2",
         "MACs per cycle must be a positive integer"),
    case("superscript digit as a link latency", "simulate mlp -s pipedream --link \u00b2,16",
         "latency must be a non-negative integer"),
    case("link bandwidth that underflows", "simulate mlp -s pipedream --link 0,1e-320", "at least 1e-12"),
    case("an mlp size of 30 digits", "describe mlp:4-" + "9" * 30 + "-2", "bad mlp name"),
    case("gantt window starting at NaN", "gantt mlp -s pipedream -o g.png --start nan", "--start must be a cycle count"),
    case("gantt window ending at infinity", "gantt mlp -s pipedream -o g.png --end inf", "--end must be a cycle count"),
    case("train for a billion epochs", "train mlp --epochs 1000000000", "expected an integer from 1 to 1,000"),
    case("train with a delay of a billion updates", "train mlp --delays 1000000000,0,0", "at most 10,000 updates"),
    case("dho2 keeping a billion eigenpairs", "dho2 --devices 4 --k 1000000000", "expected an integer from 0 to 1,000"),
    case("dho2 with a million seeds", "dho2 --devices 4 --seeds 1000000", "expected an integer from 1 to 100"),
    case("dho2 with a billion-step budget", "dho2 --devices 4 --max-steps 1000000000 --target -1",
         "expected an integer from 1 to 100,000"),
    case("dho2 with huge words", "dho2 --devices 4 --word-bytes 99999999", "expected an integer from 1 to 16"),
    case("sweep over 100,000 processor counts", "sweep --networks mlp -p 1-100000 -o s.csv", "a sweep takes at most 1,000"),
    case("sweep results onto /dev/full", "sweep --networks mlp -p 2 -j 1 -o /dev/full", "is not a regular file"),
    case("tta with a zero batch", "tta mlp --target 0.9 -p 2 -b 0", "expected an integer from 1 to 100,000, got '0'"),
    case("train's batch through the common spelling", "train mlp -b 0", "argument --batch/-b/--batch-size"),
    case("dho2's devices through the common spelling", "dho2 -p 0", "argument --processors/-p/--devices"),
    case("training a GPT", "train gpt2 -s pipedream -p 2", "has no attention, embedding, feedforward, lm_head layers"),
    case("training uniform stages", "train uniform:p=2,f=1,b=1,w=1 -s pipedream -p 2", "has no stage layers"),
    case("ZB-V on fewer layers than chunks", "simulate alexnet -s zb-v -p 8", "need at least 16 weight layers"),
    case("interleaved 1F1B on a micro-batch count that is not a multiple of P",
         "simulate uniform:p=8,f=1,b=1,w=1 -s interleaved-1f1b -p 4 --batch 6 --microbatches 6",
         "multiple of the 4 processors"),
    case("interleaved 1F1B with no fitting micro-batch count", "simulate uniform:p=12,f=1,b=1,w=1 -s interleaved-1f1b "
         "-p 6 --batch 32", "there is none"),
    # schedule options as sweep axes: the registry's own checks, before any run starts
    case("sweep offload axis that is not a switch", "sweep --networks mlp -p 2 --offload maybe -o s.csv",
         "offload must be true or false, got 'maybe'"),
    case("sweep replicate axis that is a number", "sweep --networks mlp -p 2 --replicate 2 -o s.csv",
         "replicate must be true or false"),
    case("sweep spike-bits axis that is not a switch", "sweep --networks snn_mlp -p 2 --spike-bits often -o s.csv",
         "spike_bits must be true or false"),
    case("sweep weight-memory axis given a capacity", "sweep --networks mlp -p 2 --memory 8GiB -o s.csv",
         "memory per processor is the memory_capacities key"),
    case("sweep virtual-stages axis of zero", "sweep --networks mlp -p 2 --virtual-stages 0 -o s.csv",
         "virtual_stages: --virtual-stages must be a positive integer, got 0"),
    case("sweep ag-split axis beyond one", "sweep --networks mlp -p 2 --ag-split 2 -o s.csv", "a fraction in [0, 1]"),
    case("sweep ag-split axis of NaN", "sweep --networks mlp -p 2 --ag-split nan -o s.csv", "a fraction in [0, 1]"),
    case("experiment file with a capacity under the old memory key", "sweep e.yaml -o s.csv",
         "memory per processor is the memory_capacities key", **{"e.yaml": b"networks: [mlp]\nmemory: [8GiB]\n"}),
    case("experiment file with an offload list of numbers", "sweep e.yaml -o s.csv", "offload must be true or false",
         **{"e.yaml": b"networks: [mlp]\noffload: [1, 2]\n"}),
    case("experiment file with a groups mapping", "sweep e.yaml -o s.csv", "layer groups must be text",
         **{"e.yaml": b"networks: [mlp]\ngroups: [{a: 1}]\n"}),
    case("experiment file with both capacity spellings", "sweep e.yaml -o s.csv", "given twice",
         **{"e.yaml": b"networks: [mlp]\nmemory_capacity: none\nmemory_capacities: [none]\n"}),
    case("experiment file with an unknown options key", "sweep e.yaml -o s.csv", "unknown key 'options'",
         **{"e.yaml": b"networks: [mlp]\noptions: {offload: false}\n"}),
    case("simulate with an infinite AG split", "simulate mlp -s layerpipe -p 2 --ag-split inf", "a fraction in [0, 1]"),
    case("compare with zero virtual stages", "compare mlp -p 2 --virtual-stages 0", "must be a positive integer"),
    # cluster options
    case("sweep with a NaN Dask timeout", "sweep --networks mlp -p 2 -o s.csv --dask-scheduler tcp://127.0.0.1:1 "
         "--dask-timeout nan", "--dask-timeout must be a number of seconds in (0, 3600], got nan"),
    case("sweep with an endless Dask timeout", "sweep --networks mlp -p 2 -o s.csv --dask-scheduler tcp://127.0.0.1:1 "
         "--dask-timeout inf", "--dask-timeout must be a number of seconds"),
    case("sweep with both local jobs and a cluster", "sweep --networks mlp -p 2 -o s.csv -j 2 --dask-scheduler "
         "tcp://127.0.0.1:1", "give either --jobs"),
    case("sweep with an address that is no address", "sweep --networks mlp -p 2 -o s.csv --dask-scheduler "
         "nowhere:// --dask-timeout 0.5", "cannot reach the Dask scheduler"),
    case("plot of a CSV with a 5,000-character foreign header", "plot speedup r.csv -o s.png", "(5,000 characters)",
         **{"r.csv": b"x" * 5000 + b"\n1\n"}),
    # dho2 in the common vocabulary
    case("dho2 given two different networks", "dho2 mlp --network logreg -p 2", "two networks given: 'mlp' and --network 'logreg'"),
    case("dho2 given an unknown positional network", "dho2 nonet -p 2 --quick", "neither a zoo network"),
    case("dho2 without a processor count", "dho2 mlp", "the following arguments are required: --processors/-p/--devices"),
    case("dho2 with a zero batch through -b", "dho2 mlp -p 2 -b 0", "argument --batch/-b"),
]

#: rows that also run through the installed console script, in a child process
SUBPROCESS = {
    "cyclic network file", "non-UTF-8 bytes in a YAML file", "truncated JSON (cut mid-list)", "unknown schedule",
    "zero processors", "absurd processor count", "ring too large for its route table", "trace onto a directory",
    "prime batch: one micro-batch per sample",
}


# --------------------------------------------------------------------------- running a row


@contextlib.contextmanager
def time_limit(seconds: int):
    """Fail (instead of hanging the test run) when the body takes longer than ``seconds``."""
    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s (a hang)")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def make_files(root, files: dict) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is DIR:
            path.mkdir()
        elif content is FIFO:
            os.mkfifo(path)
        elif content is DEV_ZERO:
            path.symlink_to("/dev/zero")
        else:
            path.write_bytes(content)


def run_main(argv) -> int:
    try:
        with time_limit(SECONDS):
            return main(list(argv))
    except SystemExit as exc:  # argparse usage errors exit through SystemExit
        return exc.code


@pytest.mark.parametrize("row", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_exit_2(row: Case, tmp_path, monkeypatch, capsys):
    make_files(tmp_path, row.files)
    monkeypatch.chdir(tmp_path)
    tracemalloc.start()
    try:
        code = run_main(row.argv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out, err = capsys.readouterr()
    assert peak < MEMORY_BYTES, f"{peak / 2**20:.0f} MiB allocated to refuse a bad input"
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert row.fragment in lines[0], lines[0]
    assert "Traceback" not in err
    assert lines[0].startswith("layerpipe"), lines[0]
    assert out == "", out


def test_campaign_rows_are_distinct():
    assert len({c.description for c in CASES}) == len(CASES)
    assert SUBPROCESS <= {c.description for c in CASES}
    assert len(CASES) >= 100


def _limit_memory() -> None:  # in the child: a regression must fail, not eat the machine
    cap = 3 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


@pytest.mark.parametrize("row", [c for c in CASES if c.description in SUBPROCESS],
                         ids=[c.id for c in CASES if c.description in SUBPROCESS])
def test_console_script_prints_one_line_and_no_traceback(row: Case, tmp_path):
    make_files(tmp_path, row.files)
    exe = os.path.join(os.path.dirname(sys.executable), "layerpipe")
    argv = [exe] if os.path.exists(exe) else [sys.executable, "-m", "simulator.cli"]
    proc = subprocess.run(argv + list(row.argv), cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          preexec_fn=_limit_memory)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and row.fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("argv", [["describe", "mlp"], ["compare", "mlp", "-p", "2", "-n", "4", "--json"],
                                  ["networks"]])
def test_output_on_a_full_device_is_one_line(argv, tmp_path):
    """stdout on /dev/full: every write fails with ENOSPC, which must end in one line and exit 2."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    exe = os.path.join(os.path.dirname(sys.executable), "layerpipe")
    cli = [exe] if os.path.exists(exe) else [sys.executable, "-m", "simulator.cli"]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(cli + argv, cwd=tmp_path, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "cannot write the output: No space left on device" in lines[0]


def test_out_of_memory_is_one_line(tmp_path):
    """A training network too large for the machine: numpy cannot allocate it (capped at 3 GB here)."""
    exe = os.path.join(os.path.dirname(sys.executable), "layerpipe")
    argv = [exe] if os.path.exists(exe) else [sys.executable, "-m", "simulator.cli"]
    proc = subprocess.run(argv + ["train", "mlp:64-100000000-10", "--epochs", "1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "out of memory" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_refused_results_file_is_left_intact(tmp_path, monkeypatch, capsys):
    """-o pointing at someone else's CSV (no final newline) is refused and not truncated."""
    monkeypatch.chdir(tmp_path)
    for content in (b"a,b\n1,2", b"hello", b"a\xff\n"):
        (tmp_path / "data.csv").write_bytes(content)
        assert run_main(["sweep", "--networks", "mlp", "--processors", "2", "-j", "1", "-o", "data.csv"]) == 2
        assert (tmp_path / "data.csv").read_bytes() == content
    capsys.readouterr()


@pytest.mark.parametrize("constant", ["BYTES_PER_TASK", "BYTES_PER_PAIR_GRAPH"])
@pytest.mark.parametrize("argv", [
    ["trace", "mlp", "-s", "pipedream", "-p", "2", "-n", "2", "-o", "t.json"],  # resolve()
    ["simulate", "mlp", "-s", "layerpipe", "-p", "2", "-n", "4"],  # compare()
    ["compare", "mlp", "--schedules", "gpipe", "-p", "2", "-n", "4"],
])
def test_no_limits_lets_a_refused_run_through(argv, constant, tmp_path, monkeypatch, capsys):
    """Make the estimate of a small run enormous: refused by default, run with --no-limits."""
    import simulator.limits as limits

    monkeypatch.setattr(limits, constant, 10**12)
    monkeypatch.chdir(tmp_path)
    assert run_main(argv) == 2
    err = capsys.readouterr().err
    assert "pass --no-limits" in err and len(err.strip().splitlines()) == 1
    assert run_main(argv + ["--no-limits"]) == 0
    assert capsys.readouterr().out


# --------------------------------------------------------------------------- the API


def _api_cases():
    import math

    import numpy as np

    from models.graph.build import training_graph
    from models.graph.synthetic import uniform_pipeline_graph
    from models.graph.work import TaskWork
    from models.network.files import network_from_dict, read_network_file, read_scalesim_csv
    from models.network.layers import Conv2d, Linear
    from models.network.spec import NetworkSpec, Node
    from models.network.zoo import get_network, load_network
    from models.training.optim import SGD, Adam
    from schedules.methods.layerpipe2 import parse_groups
    from schedules.passes import validate
    from schedules.registry import build_schedule
    from schedules.schedule import Schedule, parse_orders
    from simulator.costs import LinkModel, MacArray, parse_hardware, parse_link
    from simulator.engine import simulate
    from simulator.limits import LimitError, Limits, check, check_compare, estimate_run
    from simulator.platform import Platform, topology_graph
    from simulator.sweep import SweepError, experiment_from_mapping

    plat = Platform.homogeneous(2, MacArray(16))
    two = uniform_pipeline_graph(2, 1, 1, 1)
    mlp = get_network("mlp")
    cyclic = {"input": [4], "layers": [{"name": "a", "type": "linear", "out_features": 4, "inputs": ["b"]},
                                       {"name": "b", "type": "linear", "out_features": 2, "inputs": ["a"]}]}
    return [
        ("empty network file", lambda d: read_network_file(_write(d, "n.yaml", b"")), NetworkFileError, "empty"),
        ("non-UTF-8 network file", lambda d: read_network_file(_write(d, "n.json", b"\xff")), NetworkFileError,
         "not UTF-8"),
        ("truncated CSV", lambda d: read_scalesim_csv("t.csv", text="Layer, M, N, K,\nA, 8, 4"), NetworkFileError,
         "row ends early"),
        ("cyclic network mapping", lambda d: network_from_dict(cyclic), NetworkFileError, "form a cycle"),
        ("cyclic NetworkSpec", lambda d: NetworkSpec("c", (4,), (Node("a", Linear(4), ("b",)),
                                                                  Node("b", Linear(2), ("a",)))), NetworkError,
         "has a cycle"),
        ("unknown zoo network", lambda d: get_network("nope"), UnknownNetworkError, "unknown network"),
        ("unknown file type", lambda d: load_network("n.txt"), UnknownNetworkError, "neither a zoo network"),
        ("zero out_features", lambda d: Linear(0), NetworkError, "positive integer"),
        ("float out_features", lambda d: Linear(2.5), NetworkError, "positive integer"),
        ("zero kernel", lambda d: Conv2d(2, kernel=0), NetworkError, "kernel and stride > 0"),
        ("zero batch", lambda d: training_graph(mlp, 0), NetworkError, "batch size"),
        ("unknown task-graph view", lambda d: training_graph(mlp, 1, view="nope"), LayerPipeError, "unknown task-graph view"),
        ("negative work", lambda d: TaskWork(macs=-1), LayerPipeError, "non-negative"),
        ("zero MACs per cycle", lambda d: parse_hardware("mac:0"), HardwareError, "macs_per_cycle"),
        ("bad link text", lambda d: parse_link("1,0"), HardwareError, "bytes per cycle"),
        ("NaN link bandwidth", lambda d: LinkModel(1, math.nan), HardwareError, "bytes_per_cycle"),
        ("zero processors", lambda d: Platform.homogeneous(0, MacArray(1)), HardwareError, "positive integer"),
        ("unknown topology", lambda d: topology_graph("star", 4), HardwareError, "unknown topology"),
        ("unknown schedule", lambda d: build_schedule("nope", mlp, plat), ScheduleError, "unknown schedule"),
        ("zero minibatches for a schedule", lambda d: build_schedule("pipedream", mlp, plat, minibatches=0),
         ScheduleError, "positive integer"),
        ("a schedule option with a bad value", lambda d: build_schedule("gpipe", mlp, plat, microbatches=0),
         ScheduleError, "--microbatches must be a positive integer"),
        ("bad layer groups", lambda d: parse_groups("1-2,4-5", 5), ScheduleError, "start at 3"),
        ("unreadable action", lambda d: parse_orders("P0: X1.0"), ScheduleError, "cannot read action"),
        ("processor listed twice", lambda d: parse_orders("P0: F1.0; P0: B1.0"), ScheduleError, "listed twice"),
        ("hand-written schedule missing a task",
         lambda d: validate(Schedule("hand", two, parse_orders("P0: F1.0 B1.0 W1.0; P1: F2.0 B2.0"))),
         ScheduleError, "never scheduled"),
        ("hand-written schedule that deadlocks (validate)",
         lambda d: validate(Schedule.from_text("P0: B1.0 F1.0 W1.0\nP1: F2.0 B2.0 W2.0\n", two)),
         DeadlockError, "can never start"),
        ("hand-written schedule that deadlocks (simulate)",
         lambda d: simulate(Schedule.from_text("P0: F1.0 F1.1 B1.0 W1.0 B1.1 W1.1\n"
                                               "P1: F2.0 B2.0 W2.0 F2.1 B2.1 W2.1\n", two), plat),
         DeadlockError, "weight update of layer 1"),
        ("odd delay in a schedule header",
         lambda d: Schedule.from_text("# delays: 1:3\nP0: F1.0 B1.0 W1.0\nP1: F2.0 B2.0 W2.0\n", two),
         ScheduleError, "even number of slots"),
        ("NaN learning rate", lambda d: SGD(np.zeros(2), lr=math.nan), TrainingError, "finite lr"),
        ("NaN Adam epsilon", lambda d: Adam(np.zeros(2), eps=math.nan), TrainingError, "finite eps"),
        ("bad sweep grid", lambda d: experiment_from_mapping({"networks": ["mlp"], "processors": "9-2"}),
         SweepError, "9-2"),
        ("absurd minibatches (estimate)",
         lambda d: check([estimate_run(mlp, "layerpipe", 2, minibatches=10**9, batch=32)]), LimitError,
         "reduce --minibatches"),
        ("compare refuses a run over the limits",
         lambda d: check_compare(mlp, ["layerpipe"], plat, minibatches=64, batch=32, limits=Limits(memory_bytes=1000)),
         LimitError, "limit 1000 B"),
    ]


def _write(directory, name: str, content: bytes):
    path = directory / name
    path.write_bytes(content)
    return path


API_CASES = _api_cases()


@pytest.mark.parametrize("description,call,error,fragment", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_raises_typed_errors(description, call, error, fragment, tmp_path):
    with time_limit(SECONDS), pytest.raises(error) as exc:
        call(tmp_path)
    assert isinstance(exc.value, LayerPipeError)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_limits_doctests():
    import doctest

    import simulator.limits

    result = doctest.testmod(simulator.limits)
    assert result.failed == 0 and result.attempted > 5


# --------------------------------------------------------------------------- the limits' estimates


@pytest.mark.parametrize("topology", ["full", "ring", "mesh"])
def test_route_table_size_matches_networkx(topology):
    import networkx as nx

    from simulator.limits import route_hops
    from simulator.platform import topology_graph

    for p in (1, 2, 3, 4, 5, 6, 9, 12, 16, 30):
        hops = sum(sum(d.values()) for _, d in nx.all_pairs_shortest_path_length(topology_graph(topology, p)))
        assert route_hops(p, topology) == hops, p


@pytest.mark.parametrize("P", [1, 3, 8])
def test_task_estimate_bounds_the_schedule(P):
    """Exact for the schedules on the fine graph, an upper bound for stage-level ones."""
    from netcases import runnable

    from models.network.zoo import get_network
    from schedules.registry import SCHEDULES, build_schedule
    from simulator.costs import MacArray
    from simulator.limits import estimate_run
    from simulator.platform import Platform

    plat = Platform.homogeneous(P, MacArray(256))
    for net in (get_network("lenet5"), get_network("resnet18_cifar", (3, 8, 8))):
        for name in SCHEDULES:
            network, batch = runnable(name, net, P, 12)
            sched = build_schedule(name, network, plat, minibatches=3, batch=batch, time_limit=0.2)  # optimal's
            est = estimate_run(network, name, P, minibatches=3, batch=batch)
            tasks = sum(len(a) for a in sched.orders.values())
            assert est.units == sched.units, name
            if name in ("sequential", "layerpipe", "layerpipe2"):
                assert est.tasks == tasks, name
            else:
                assert est.tasks >= tasks, name


@pytest.mark.parametrize("trace", [False, True])
def test_memory_estimate_is_conservative(trace):
    """The estimate covers what a run really allocates (tracemalloc peak), trace and checker included."""
    import tracemalloc

    from models.network.zoo import get_network
    from schedules.registry import build_schedule
    from simulator.checker import find_violations
    from simulator.costs import LinkModel, MacArray
    from simulator.engine import simulate
    from simulator.limits import estimate_run
    from simulator.platform import Platform
    from simulator.trace import MemoryTrace, to_chrome

    net, P, n = get_network("lenet5"), 4, 150
    plat = Platform.homogeneous(P, MacArray(256), LinkModel(100, 16.0))
    est = estimate_run(net, "layerpipe", P, minibatches=n, batch=32, trace=trace)
    tracemalloc.start()
    try:
        sched = build_schedule("layerpipe", net, plat, minibatches=n, batch=32)
        sink = MemoryTrace() if trace else None
        simulate(sched, plat, trace=sink)
        if trace:
            assert find_violations(sink, sched, plat, limit=1) == []
            to_chrome(sink)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= est.memory_bytes, (peak, est.memory_bytes)
    assert est.memory_bytes <= 6 * peak  # and not absurdly pessimistic
