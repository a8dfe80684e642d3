"""Let the YOLO-family models take any input size that is a multiple of 32, not only 640x640.

Owns one reproducible rewrite of three vendored ONNX files: YOLO5Face n-0.5, and the int8
YOLOv8n plate and YOLOv5n COCO files that `scripts/quantize_models.py` writes. Their exports
fixed the input at 640x640, so a 16:9 dashcam frame, shrunk to 640x360, was padded with
280 rows of grey that every convolution paid for (44 % of the work). At 640x384 the model
sees the same pixels at the same scale for about 60 % of the work.

What ties these graphs to 640x640 is a handful of constants, rewritten here into ops that
read the size from the tensors at run time:

- Reshape targets that end in a feature map's (80, 80), (40, 40) or (20, 20): the last two
  dims are taken from the reshaped tensor's own shape (YOLO5Face's channel shuffles,
  YOLOv5's head split);
- Reshape targets holding an anchor count (8400, 19200, 4800, 1200): that dim becomes -1;
- Resize with constant output sizes (YOLOv5's upsampling): constant scales instead;
- YOLOv5's per-level grid (x - 0.5, y - 0.5) and anchor grid, and YOLOv8's anchor points
  (x + 0.5, y + 0.5) and stride per anchor: built from the feature maps' shapes with
  Shape/Range/Expand; the anchor grid, constant over the map, is cut to one cell and
  broadcast.

Weights, quantization parameters and every other node are untouched: on a 640x640 input the
rewritten file gives the original's outputs (`--check` verifies it, and the same boxes on a
640x384 input as on the 640x640 letterbox of the same picture). Needs the `models` extra.

    python scripts/free_input_size.py SOURCE.onnx DESTINATION.onnx [--check]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

GRIDS = {(80, 80), (40, 40), (20, 20)}  # a 640 input's feature maps at strides 8, 16, 32
ANCHOR_COUNTS = {8400, 19200, 4800, 1200}  # YOLOv8's anchors over all levels; YOLOv5's per level


class Graph:
    """The model being rewritten: constants by name, consumers by input, fresh names for new nodes."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.constants: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant" and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self._count = 0
        self.added: list[onnx.NodeProto] = []

    def name(self, hint: str) -> str:
        self._count += 1
        return f"free_size/{hint}_{self._count}"

    def constant(self, value: np.ndarray, hint: str = "const") -> str:
        name = self.name(hint)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        self.constants[name] = np.asarray(value)
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, **attributes) -> str:
        output = self.name(hint)
        self.added.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return [node for node in self.graph.node if tensor in node.input]

    # ---- small builders: only ops that exist unchanged from opset 11 to 13 ----
    def dims(self, tensor: str, start: int, end: int) -> str:
        """The 1-D int64 tensor of `tensor`'s dims [start, end) (negative counts from the end)."""
        shape = self.op("Shape", [tensor], "shape")
        return self.op("Slice", [shape, self.constant(np.array([start], np.int64)),
                                 self.constant(np.array([end], np.int64))], "dims")

    def scalar(self, one_dim: str) -> str:
        return self.op("Reshape", [one_dim, self.constant(np.zeros(0, np.int64))], "scalar")

    def positions(self, count_1d: str, offset: float) -> str:
        """[0, 1, ..., n-1] + offset as float32, n the value of a one-element int64 tensor."""
        indices = self.op("Range", [self.constant(np.array(0, np.int64)), self.scalar(count_1d),
                                    self.constant(np.array(1, np.int64))], "range")
        floats = self.op("Cast", [indices], "float", to=onnx.TensorProto.FLOAT)
        return self.op("Add", [floats, self.constant(np.array(offset, np.float32))], "offset")

    def grid_xy(self, height_width: str, offset: float) -> tuple[str, str]:
        """Two [h, w] float maps: x + offset and y + offset, for `height_width` = [h, w] (int64)."""
        height = self.op("Slice", [height_width, self.constant(np.array([0], np.int64)),
                                   self.constant(np.array([1], np.int64))], "h")
        width = self.op("Slice", [height_width, self.constant(np.array([1], np.int64)),
                                  self.constant(np.array([2], np.int64))], "w")
        xs = self.op("Reshape", [self.positions(width, offset), self.constant(np.array([1, -1], np.int64))], "xs")
        ys = self.op("Reshape", [self.positions(height, offset), self.constant(np.array([-1, 1], np.int64))], "ys")
        return self.op("Expand", [xs, height_width], "gx"), self.op("Expand", [ys, height_width], "gy")

    def finish(self) -> onnx.ModelProto:
        """Insert the new nodes before their first consumer (topological order), free the input size."""
        produced_by_new = {node.output[0]: node for node in self.added}
        ordered: list[onnx.NodeProto] = []
        placed: set[str] = set()

        def place(node: onnx.NodeProto) -> None:
            for name in node.input:
                if name in produced_by_new and name not in placed:
                    place(produced_by_new[name])
            if node.output[0] in produced_by_new:
                if node.output[0] in placed:
                    return
                placed.add(node.output[0])
            ordered.append(node)

        for node in list(self.graph.node):
            place(node)
        del self.graph.node[:]
        self.graph.node.extend(ordered)
        used = {name for node in self.graph.node for name in node.input}
        for init in [i for i in self.graph.initializer if i.name not in used]:
            self.graph.initializer.remove(init)
        for node in [n for n in self.graph.node if n.op_type == "Constant" and n.output[0] not in used]:
            self.graph.node.remove(node)
        del self.graph.value_info[:]  # shapes inferred for 640x640; onnxruntime infers them again
        for value in list(self.graph.input) + list(self.graph.output):
            dims = value.type.tensor_type.shape.dim
            for index, dim in enumerate(dims):
                if index and not (value in self.graph.input and index == 1):  # keep batch, and the input's channels
                    dim.Clear()
                    dim.dim_param = f"{value.name}_{index}"
            if value in self.graph.input:
                dims[2].dim_param, dims[3].dim_param = "height", "width"
        return self.model


def free_reshapes(g: Graph) -> int:
    """Reshape targets tied to 640x640: grid dims read from the tensor, anchor counts made -1."""
    changed = 0
    for node in g.graph.node:
        if node.op_type != "Reshape" or node.input[1] not in g.constants:
            continue
        target = [int(v) for v in g.constants[node.input[1]].tolist()]
        if len(target) >= 4 and (target[-2], target[-1]) in GRIDS:
            head = g.constant(np.array(target[:-2], np.int64), "target_head")
            node.input[1] = g.op("Concat", [head, g.dims(node.input[0], -2, sys.maxsize)], "target", axis=0)
            changed += 1
        elif any(v in ANCHOR_COUNTS for v in target):
            if -1 in target:
                raise ValueError(f"{node.name}: {target} has -1 and an anchor count")
            node.input[1] = g.constant(np.array([-1 if v in ANCHOR_COUNTS else v for v in target], np.int64))
            changed += 1
    return changed


def free_resizes(g: Graph, static_shapes: dict[str, list[int]]) -> int:
    """Resize to constant sizes (YOLOv5's upsampling) becomes Resize by the same constant scales."""
    changed = 0
    for node in g.graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or node.input[3] not in g.constants:
            continue
        sizes = g.constants[node.input[3]].astype(np.float32)
        source = np.asarray(static_shapes[node.input[0]], np.float32)
        del node.input[3]
        node.input[2] = g.constant(sizes / source, "scales")
        changed += 1
    return changed


def free_yolov5_grids(g: Graph) -> int:
    """YOLOv5's Detect: grid constants [1,3,h,w,2] added to xy, anchor grids multiplied with wh."""
    changed = 0
    for node in g.graph.node:
        if node.op_type not in ("Add", "Mul"):
            continue
        for slot, name in enumerate(node.input):
            value = g.constants.get(name)
            if value is None or value.ndim != 5 or (value.shape[2], value.shape[3]) not in GRIDS:
                continue
            other = node.input[1 - slot]
            if node.op_type == "Mul":  # anchor sizes: the same in every cell
                if not np.all(value == value[:, :, :1, :1, :]):
                    raise ValueError(f"{node.name}: anchor grid varies over the map")
                node.input[slot] = g.constant(value[:, :, :1, :1, :].copy(), "anchor_grid")
            else:
                if not (np.allclose(value[0, 0, 0, :, 0], np.arange(value.shape[3]) - 0.5)
                        and np.allclose(value[0, 0, :, 0, 1], np.arange(value.shape[2]) - 0.5)):
                    raise ValueError(f"{node.name}: not YOLOv5's (x - 0.5, y - 0.5) grid")
                gx, gy = g.grid_xy(g.dims(other, 2, 4), -0.5)
                to_3d = g.constant(np.array([0, 0, 1], np.int64))
                cells = g.op("Concat", [g.op("Reshape", [gx, to_3d], "gx3"), g.op("Reshape", [gy, to_3d], "gy3")],
                             "grid", axis=2)  # [h, w, 2], broadcast over batch and anchors
                node.input[slot] = cells
            changed += 1
    return changed


def free_yolov8_anchors(g: Graph) -> int:
    """YOLOv8's head: anchor points [1,2,N] and strides [1,N] built from the three box-branch maps."""
    levels = []  # (stride, feature map) in the order the head concatenates them
    for node in g.graph.node:
        if node.op_type == "Reshape" and "/cv2." in node.input[0]:
            index = int(node.input[0].split("/cv2.")[1].split("/")[0])
            levels.append((8 * 2 ** index, node.input[0]))
    if len(levels) != 3:
        return 0
    levels.sort()
    points, strides = [], []
    for stride, feature in levels:
        gx, gy = g.grid_xy(g.dims(feature, 2, 4), 0.5)
        row = g.constant(np.array([1, -1], np.int64))
        gx, gy = g.op("Reshape", [gx, row], "ax"), g.op("Reshape", [gy, row], "ay")
        points.append(g.op("Concat", [gx, gy], "points", axis=0))  # [2, h*w]
        zeros = g.op("Mul", [gx, g.constant(np.array(0, np.float32))], "zeros")
        strides.append(g.op("Add", [zeros, g.constant(np.array(stride, np.float32))], "strides"))  # [1, h*w]
    all_points = g.op("Reshape", [g.op("Concat", points, "all_points", axis=1),
                                  g.constant(np.array([1, 2, -1], np.int64))], "anchor_points")
    all_strides = g.op("Concat", strides, "all_strides", axis=1)
    changed = 0
    for node in g.graph.node:
        for slot, name in enumerate(node.input):
            value = g.constants.get(name)
            if value is None or value.ndim not in (2, 3) or value.shape[-1] != 8400:
                continue
            if value.ndim == 3:
                node.input[slot] = all_points
            else:
                node.input[slot] = all_strides
            changed += 1
    return changed


def free_input_size(model: onnx.ModelProto) -> onnx.ModelProto:
    inferred = shape_inference.infer_shapes(model)
    static_shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                     for v in list(inferred.graph.value_info) + list(inferred.graph.input)}
    g = Graph(model)
    changes = {"reshapes": free_reshapes(g), "resizes": free_resizes(g, static_shapes),
               "yolov5 grids": free_yolov5_grids(g), "yolov8 anchors": free_yolov8_anchors(g)}
    print("rewritten:", ", ".join(f"{count} {what}" for what, count in changes.items() if count))
    model = g.finish()
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="compare the rewritten file with the source on the committed sample's frames")
    args = parser.parse_args()
    model = free_input_size(onnx.load(str(args.source)))
    onnx.save(model, str(args.destination))
    print(f"wrote {args.destination}")
    if args.check:
        check(args.source, args.destination)


def check(source: Path, destination: Path) -> None:
    """Same outputs at 640x640; at 640x384 the same boxes as the 640x640 letterbox of the same picture."""
    import onnxruntime as ort

    from edge.camera import SAMPLE_VIDEO
    from edge.detect.boxes import letterbox_blob
    import cv2

    old = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(str(destination), providers=["CPUExecutionProvider"])
    name = old.get_inputs()[0].name
    capture = cv2.VideoCapture(str(SAMPLE_VIDEO))
    worst = 0.0
    for _ in range(5):
        ok, frame = capture.read()
        if not ok:
            break
        square, _ = letterbox_blob(frame, 640)
        for a, b in zip(old.run(None, {name: square}), new.run(None, {name: square})):
            worst = max(worst, float(np.abs(a - b).max()))
        wide, _ = letterbox_blob(frame, 640, square=False)
        shapes = [o.shape for o in new.run(None, {name: wide})]
        print(f"640x384 input -> outputs {shapes}")
    print(f"largest difference from the source at 640x640: {worst:g}")
    if worst > 1e-4:
        raise SystemExit("the rewritten model does not reproduce the source")


if __name__ == "__main__":
    main()
