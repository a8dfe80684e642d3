"""Build the committed demo clip and its ground truth from the CC BY 4.0 photo sets.

This dev tool owns three files under ``edge/data/sample/``:

* ``drive_720p.mp4``     1280x720, 30 fps, 360 frames, H.264 (libx264, yuv420p), no audio
* ``drive_720p.gt.json`` per-frame face and plate boxes in output-frame pixels
* ``ATTRIBUTION.md``     datasets, licences, source files and what was changed

The clip is a slide show "drive": six scenes of about two seconds that alternate
licence-plate photos (Roboflow "Google Licence Plates", from Open Images) and face
photos (Roboflow "testingplate"). Each scene pans and zooms slowly (Ken Burns) and
scenes are separated by a few black frames (hard cuts, no cross-fades, so every frame
has unambiguous ground truth). Every annotated box of a chosen photo is pushed through
exactly the per-frame affine transform used to render that frame, clipped to the
frame, and dropped when less than half of it remains visible.

The clip is a regression fixture and a demo, not a benchmark: the photos and views
were chosen so that the default detectors cover every labelled object in every frame
(see ``SCENES``), because the end-to-end privacy test requires every ground-truth box
to lose its detail in storage. Detection recall is measured on the full datasets by
``scripts/eval_recall.py``.

The face photos were exported by Roboflow stretched to 640x640; they are rendered at
their original landscape aspect (fixed per photo below), which is an anisotropic
scale, so boxes stay exact. Their "cutout" augmentation left small black squares,
which are filled in by inpainting.

Usage (from the repository root)::

    python scripts/make_sample.py --data ../shared/data

Output is deterministic for a given set of library versions. Not part of the
``edge`` package and never imported by it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]

WIDTH, HEIGHT, FPS = 1280, 720, 30
FRAME_COUNT = 360
CUT_FRAMES = 4  # black frames between scenes
LABELS = ("face", "plate")
MIN_VISIBLE = 0.5
CRF = 18
PRESET = "slow"
X264_THREADS = 4  # fixed so the bitstream does not depend on the machine's core count

VIDEO_NAME = "drive_720p.mp4"
GT_NAME = "drive_720p.gt.json"
ATTRIBUTION_NAME = "ATTRIBUTION.md"

PLATES_DIR = "plates-openimages-valid"
PLATES_COCO = "_annotations.coco.json"
PLATE_CATEGORY = 1
FACES_DIR = "faces-roboflow-sample"
FACE_CLASSES = {0: "face", 1: "plate"}  # data.yaml: names ['face', 'license']

Rect = tuple[float, float, float]  # (x0, y0, width) of the view in source pixels


@dataclass(frozen=True)
class Dataset:
    key: str
    title: str
    url: str
    author: str
    folder: str


DATASETS = {
    "plates": Dataset(
        key="plates",
        title='"Google Licence Plates" (v2, 2023-02-15), images from Open Images',
        url="https://universe.roboflow.com/aaaaaaaaaa-67qhw/google-licence-plates",
        author="a Roboflow Universe user",
        folder=PLATES_DIR,
    ),
    "faces": Dataset(
        key="faces",
        title='"testingplate" (v3, 2023-05-01)',
        url="https://universe.roboflow.com/iambeginner/testingplate",
        author="iambeginner (Roboflow Universe)",
        folder=FACES_DIR,
    ),
}


@dataclass(frozen=True)
class Scene:
    """One photo shown for a stretch of frames, with a linear pan/zoom of its view.

    ``start`` and ``end`` are the view rectangles (x0, y0, width) in source pixels at
    the first and last frame of the scene; the view height follows from the output
    aspect and ``pixel_aspect`` (the width of one source pixel relative to its height
    in the original photo: 1.0 for undistorted photos).
    """

    dataset: str
    file: str
    pixel_aspect: float
    start: Rect
    end: Rect
    note: str


# Chosen by hand so that the default detectors (YuNet faces, YOLOv8n plates, shipped
# thresholds) cover the centre of every labelled object in every frame, with margin:
# this clip is a regression fixture and a demo, not a benchmark. The end-to-end
# privacy test asserts that every ground-truth box loses its detail in the stored
# output, so an object the detectors miss here would fail that test rather than
# measure anything; recall, misses included, is measured on the full datasets
# (scripts/eval_recall.py). Each candidate was checked by running the detectors on the
# rendered 1280x720 frames of its whole pan. Where a photo also holds objects that
# the detectors find only now and then (small or blurred faces in the background),
# the view leaves them out (under half visible, so not labelled); labels are never
# edited. Otherwise: street-like photos with several clearly visible objects (faces
# at least 50 px tall, most over 100 px; plates at least 13 px tall), no collages, no
# plates blanked out in the source. The faces set also holds rotated and shifted
# augmentations; the three used here have no rotation border. Their original aspect
# comes from the face boxes, whose median width/height ratio is 0.44-0.6 as exported
# and 0.8-0.9 once restored.
SCENES: tuple[Scene, ...] = (
    Scene("plates", "321ffb38656f7311_jpg.rf.e1f4cc237a3331fca4bd25a915dc4d4a.jpg", 1.0,
          start=(60.0, 186.0, 840.0), end=(100.0, 200.0, 780.0),
          note="police cars coming towards the camera; three labelled plates"),
    Scene("faces", "skypost16012020a01s_jpg.rf.573b87b45e6c4b895aa25c9f25d0bdd0.jpg",
          16 / 9, start=(24.0, 96.0, 544.0), end=(44.0, 100.0, 516.0),
          note="pedestrians walking towards the camera; shown at 16:9, cropped below a "
               "caption graphic and the small blurred faces at the top"),
    Scene("plates", "b8a3f2ea385e45b3_jpg.rf.1e8fa9f78bc04f488dea2d7fcd13b2c0.jpg", 1.0,
          start=(0.0, 0.0, 1024.0), end=(24.0, 34.0, 948.0),
          note="taxis at a crossing"),
    Scene("faces", "012420_coronoa_masks_web_jpg.rf.c29c609bdf63aa3e465b6ed7c8d2849b.jpg",
          16 / 9, start=(0.0, 56.0, 552.0), end=(6.0, 62.0, 528.0),
          note="travellers in masks in a crowd; shown at 16:9, the left part of the photo"),
    Scene("plates", "2b97f5bf137ee8d1_jpg.rf.9f2ca6a033e5f0dd44e6cbe3e0ac158c.jpg", 1.0,
          start=(0.0, 54.0, 1024.0), end=(76.0, 80.0, 948.0),
          note="parked cars"),
    Scene("faces", "1125506397_15801322207071n_jpg.rf.863e590c641d992bbea07b349eb0727f.jpg",
          3 / 2, start=(0.0, 0.0, 640.0), end=(30.0, 0.0, 593.0),
          note="travellers walking towards the camera; shown at 3:2"),
)


@dataclass(frozen=True)
class SourceBox:
    label: str
    track: int
    xyxy: tuple[float, float, float, float]  # source pixels, pixel edges at integers


@dataclass(frozen=True)
class LoadedScene:
    scene: Scene
    image: np.ndarray  # BGR
    boxes: tuple[SourceBox, ...]
    first_frame: int
    frame_count: int


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT / ".." / "shared" / "data",
                        help=f"folder holding {PLATES_DIR}/ and {FACES_DIR}/")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "edge" / "data" / "sample",
                        help="where the clip, ground truth and attribution are written")
    parser.add_argument("--crf", type=int, default=CRF, help="libx264 constant rate factor")
    parser.add_argument("--preview", type=Path, default=None,
                        help="also decode the clip and save PNGs with the ground truth drawn here")
    return parser.parse_args()


# --- sources -------------------------------------------------------------------------


def load_plate_boxes(data: Path, file_name: str) -> list[tuple[str, tuple[float, ...]]]:
    coco = json.loads((data / PLATES_DIR / PLATES_COCO).read_text())
    image_ids = [im["id"] for im in coco["images"] if im["file_name"] == file_name]
    if len(image_ids) != 1:
        raise ValueError(f"{file_name}: expected one COCO image entry, found {len(image_ids)}")
    boxes = []
    for ann in coco["annotations"]:
        if ann["image_id"] == image_ids[0] and ann["category_id"] == PLATE_CATEGORY:
            x, y, w, h = (float(v) for v in ann["bbox"])
            boxes.append(("plate", (x, y, x + w, y + h)))
    return boxes


def load_face_boxes(data: Path, file_name: str, width: int, height: int) -> list[tuple[str, tuple[float, ...]]]:
    label_path = data / FACES_DIR / "labels" / (Path(file_name).stem + ".txt")
    boxes = []
    for line in label_path.read_text().splitlines():
        if not line.strip():
            continue
        cls, cx, cy, w, h = line.split()
        cxf, cyf, wf, hf = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
        boxes.append((FACE_CLASSES[int(cls)], (cxf - wf / 2, cyf - hf / 2, cxf + wf / 2, cyf + hf / 2)))
    return boxes


def cutout_mask(image: np.ndarray) -> np.ndarray:
    """Mask of the black 14 px squares left by Roboflow's cutout augmentation.

    A square is a small near-black block (its 9x9-eroded core is at most 16 px wide)
    that is uniformly dark inside, clearly darker than a 3 px ring around it, and whose
    near-black pixels form one solid blob 10-30 px across (one square or two overlapping)
    that fills at least 70 % of its bounding box, so dark clothing or hair is left alone.
    """
    level = image.max(axis=2).astype(np.float64)
    height, width = level.shape
    core = cv2.erode((level < 25).astype(np.uint8), np.ones((9, 9), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    _, blob_labels, blob_stats, _ = cv2.connectedComponentsWithStats((level < 12).astype(np.uint8),
                                                                     connectivity=4)
    mask = np.zeros((height, width), np.uint8)
    for x, y, w, h, _ in stats[1:count]:
        if w > 16 or h > 16:
            continue
        blob = blob_labels[y + h // 2, x + w // 2]
        _, _, bw, bh, barea = blob_stats[blob]
        if blob == 0 or not 10 <= max(bw, bh) <= 30 or barea < 0.7 * bw * bh:
            continue
        x0, y0, x1, y1 = max(x - 4, 0), max(y - 4, 0), min(x + w + 4, width), min(y + h + 4, height)
        rx0, ry0, rx1, ry1 = max(x0 - 3, 0), max(y0 - 3, 0), min(x1 + 3, width), min(y1 + 3, height)
        inside, ring = level[y0:y1, x0:x1], level[ry0:ry1, rx0:rx1]
        ring_mean = (ring.sum() - inside.sum()) / max(ring.size - inside.size, 1)
        if inside.mean() < 12 and ring_mean > inside.mean() + 15:
            mask[y0:y1, x0:x1] = 255
    return cv2.dilate(mask, np.ones((5, 5), np.uint8))


def load_image(data: Path, scene: Scene) -> np.ndarray:
    folder = data / DATASETS[scene.dataset].folder
    path = folder / "images" / scene.file if scene.dataset == "faces" else folder / scene.file
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    if scene.dataset == "faces":
        image = cv2.inpaint(image, cutout_mask(image), 5, cv2.INPAINT_TELEA)
    return image


def scene_lengths(count: int) -> list[int]:
    usable = FRAME_COUNT - CUT_FRAMES * (count - 1)
    base, extra = divmod(usable, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def load_scenes(data: Path) -> list[LoadedScene]:
    loaded, track, frame = [], 1, 0
    for scene, length in zip(SCENES, scene_lengths(len(SCENES))):
        image = load_image(data, scene)
        height, width = image.shape[:2]
        if scene.dataset == "plates":
            raw = load_plate_boxes(data, scene.file)
        else:
            raw = load_face_boxes(data, scene.file, width, height)
        boxes = []
        for label, xyxy in raw:
            boxes.append(SourceBox(label, track, tuple(xyxy)))
            track += 1
        check_view(scene, width, height)
        loaded.append(LoadedScene(scene, image, tuple(boxes), frame, length))
        frame += length + CUT_FRAMES
    return loaded


# --- geometry ------------------------------------------------------------------------


def view_height(scene: Scene, view_width: float) -> float:
    return view_width * scene.pixel_aspect * HEIGHT / WIDTH


def view_at(scene: Scene, t: float) -> tuple[float, float, float, float]:
    """View rectangle (x0, y0, w, h) in source pixels at scene time t in [0, 1]."""
    x0, y0, w = (a + (b - a) * t for a, b in zip(scene.start, scene.end))
    return x0, y0, w, view_height(scene, w)


def check_view(scene: Scene, width: int, height: int) -> None:
    for t in (0.0, 1.0):  # edges move linearly, so both ends inside means always inside
        x0, y0, w, h = view_at(scene, t)
        if x0 < 0 or y0 < 0 or x0 + w > width + 1e-6 or y0 + h > height + 1e-6:
            raise ValueError(f"{scene.file}: view {x0, y0, w, h} leaves the {width}x{height} image")


def affine_for(view: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """(sx, sy, tx, ty) mapping continuous source coords to output: X = sx*x + tx."""
    x0, y0, w, h = view
    sx, sy = WIDTH / w, HEIGHT / h
    return sx, sy, -x0 * sx, -y0 * sy


def warp_matrix(affine: tuple[float, float, float, float]) -> np.ndarray:
    """The same map for cv2.warpAffine, whose pixel centres sit at integer coordinates."""
    sx, sy, tx, ty = affine
    return np.array([[sx, 0.0, tx + 0.5 * sx - 0.5], [0.0, sy, ty + 0.5 * sy - 0.5]])


def transform_box(xyxy: tuple[float, ...], affine: tuple[float, float, float, float]) -> list[float] | None:
    sx, sy, tx, ty = affine
    x1, y1, x2, y2 = xyxy[0] * sx + tx, xyxy[1] * sy + ty, xyxy[2] * sx + tx, xyxy[3] * sy + ty
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(WIDTH)), min(y2, float(HEIGHT))
    full = (x2 - x1) * (y2 - y1)
    if cx2 <= cx1 or cy2 <= cy1 or full <= 0:
        return None
    if (cx2 - cx1) * (cy2 - cy1) < MIN_VISIBLE * full:
        return None
    return [round(cx1, 1), round(cy1, 1), round(cx2, 1), round(cy2, 1)]


def scene_time(index: int, loaded: LoadedScene) -> float:
    return (index - loaded.first_frame) / max(loaded.frame_count - 1, 1)


def scene_for(index: int, scenes: list[LoadedScene]) -> LoadedScene | None:
    for loaded in scenes:
        if loaded.first_frame <= index < loaded.first_frame + loaded.frame_count:
            return loaded
    return None


# --- rendering -----------------------------------------------------------------------


def render_frame(index: int, scenes: list[LoadedScene]) -> tuple[np.ndarray, list[dict]]:
    loaded = scene_for(index, scenes)
    if loaded is None:
        return np.zeros((HEIGHT, WIDTH, 3), np.uint8), []
    affine = affine_for(view_at(loaded.scene, scene_time(index, loaded)))
    frame = cv2.warpAffine(loaded.image, warp_matrix(affine), (WIDTH, HEIGHT),
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    boxes = []
    for box in loaded.boxes:
        xyxy = transform_box(box.xyxy, affine)
        if xyxy is not None:
            boxes.append({"label": box.label, "xyxy": xyxy, "track": box.track})
    return frame, boxes


def write_video(path: Path, scenes: list[LoadedScene], crf: int) -> list[dict]:
    frames_gt = []
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.codec_context.thread_count = X264_THREADS
        stream.options = {"crf": str(crf), "preset": PRESET}
        for index in range(FRAME_COUNT):
            image, boxes = render_frame(index, scenes)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            container.mux(stream.encode(frame))
            frames_gt.append({"index": index, "boxes": boxes})
        container.mux(stream.encode(None))
    return frames_gt


# --- metadata ------------------------------------------------------------------------


def sources_entries(scenes: list[LoadedScene]) -> list[dict]:
    return [{
        "scene": i,
        "label": "plate" if s.scene.dataset == "plates" else "face",
        "dataset": DATASETS[s.scene.dataset].url,
        "files": [s.scene.file],
        "first_frame": s.first_frame,
        "last_frame": s.first_frame + s.frame_count - 1,
    } for i, s in enumerate(scenes)]


def ground_truth_json(frames: list[dict], scenes: list[LoadedScene]) -> str:
    """Valid JSON, one frame per line so diffs stay readable."""
    head = {"video": VIDEO_NAME, "width": WIDTH, "height": HEIGHT, "fps": FPS,
            "frame_count": FRAME_COUNT, "labels": list(LABELS)}
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines.append('  "sources": [')
    sources = sources_entries(scenes)
    lines += [f"    {json.dumps(s)}{',' if i < len(sources) - 1 else ''}" for i, s in enumerate(sources)]
    lines.append("  ],")
    lines.append('  "frames": [')
    lines += [f"    {json.dumps(f)}{',' if i < len(frames) - 1 else ''}" for i, f in enumerate(frames)]
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def attribution_markdown(scenes: list[LoadedScene], crf: int, video_sha256: str) -> str:
    used = {}
    for s in scenes:
        used.setdefault(s.scene.dataset, []).append(s)
    parts = [
        "# Sample clip attribution",
        "",
        f"`{VIDEO_NAME}` ({WIDTH}x{HEIGHT}, {FPS} fps, {FRAME_COUNT} frames, H.264) and its ground truth "
        f"`{GT_NAME}` are a derivative work of photos from two datasets published on Roboflow Universe "
        "under the Creative Commons Attribution 4.0 International licence "
        "([CC BY 4.0](https://creativecommons.org/licenses/by/4.0/)). "
        "The clip and the ground truth are shared under CC BY 4.0 as well. The licensors do not endorse "
        "this project.",
        "",
    ]
    for key in ("plates", "faces"):
        ds = DATASETS[key]
        parts += [
            f"## {ds.title}",
            "",
            f"- Source: {ds.url}",
            f"- Provided by: {ds.author}",
            "- Licence: CC BY 4.0, https://creativecommons.org/licenses/by/4.0/",
        ]
        if key == "plates":
            parts.append("- The photos are from Google's Open Images dataset; the first 16 hex digits of each "
                         "file name are the Open Images image ID, where the original Flickr author and "
                         "licence of each photo are recorded.")
        parts += ["- Photos used (Roboflow export file names):", ""]
        for s in used.get(key, []):
            last = s.first_frame + s.frame_count - 1
            parts.append(f"  - `{s.scene.file}` (frames {s.first_frame}-{last}; {s.scene.note})")
        parts.append("")
    parts += [
        "## Changes made",
        "",
        "- Each photo was cropped to a 16:9 view (for some, only part of the photo; see the notes above) "
        "and scaled to 1280x720; the view pans and zooms slowly "
        "(at most about 10 %) over the scene (Ken Burns effect). Scenes are separated by "
        f"{CUT_FRAMES} black frames.",
        "- The face photos had been stretched to 640x640 by the dataset export; they were scaled back "
        "to their original landscape aspect (16:9 or 3:2), which makes them look as photographed.",
        "- Small black squares left in the face photos by the export's cutout augmentation were filled "
        "in by inpainting (OpenCV Telea).",
        "- The annotated face and licence-plate boxes were transformed with the same geometry, clipped to "
        "the frame and dropped when less than half visible; annotations were not otherwise edited.",
        f"- The frames were re-encoded with libx264 (crf {crf}, preset {PRESET}, yuv420p) into MP4.",
        "",
        "## Reproducing",
        "",
        "From the repository root, with the datasets in `../shared/data`:",
        "",
        "```",
        "python scripts/make_sample.py --data ../shared/data",
        "```",
        "",
        f"SHA-256 of the committed clip: `{video_sha256}` (the encoder's output can differ between "
        "library versions; the ground truth does not depend on it).",
        "",
    ]
    return "\n".join(parts)


# --- preview -------------------------------------------------------------------------


def write_previews(video: Path, frames: list[dict], out_dir: Path, indices: tuple[int, ...]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(video))
    written, index = [], 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if index in indices:
            for box in frames[index]["boxes"]:
                x1, y1, x2, y2 = box["xyxy"]
                color = (0, 255, 0) if box["label"] == "face" else (0, 200, 255)
                cv2.rectangle(image, (round(x1), round(y1)), (round(x2) - 1, round(y2) - 1), color, 1)
                cv2.putText(image, f"{box['label']} {box['track']}", (round(x1), max(round(y1) - 4, 10)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
            path = out_dir / f"frame_{index:03d}.png"
            cv2.imwrite(str(path), image)
            written.append(path)
        index += 1
    capture.release()
    return written


def main() -> None:
    args = parse_args()
    data, output = args.data.resolve(), args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    scenes = load_scenes(data)
    video = output / VIDEO_NAME
    frames = write_video(video, scenes, args.crf)
    (output / GT_NAME).write_text(ground_truth_json(frames, scenes))
    digest = hashlib.sha256(video.read_bytes()).hexdigest()
    (output / ATTRIBUTION_NAME).write_text(attribution_markdown(scenes, args.crf, digest))
    boxes = [b for f in frames for b in f["boxes"]]
    tracks = {(b["label"], b["track"]) for b in boxes}
    print(f"wrote {video} ({video.stat().st_size / 1e6:.2f} MB, sha256 {digest[:12]})")
    for label in LABELS:
        heights = sorted(b["xyxy"][3] - b["xyxy"][1] for b in boxes if b["label"] == label)
        objects = sum(1 for lab, _ in tracks if lab == label)
        if heights:
            print(f"{label}: {objects} objects, {len(heights)} boxes, height min {heights[0]:.1f} "
                  f"median {heights[len(heights) // 2]:.1f} px")
    if args.preview is not None:
        indices = {30, 100, 200, 300}
        for s in scenes:
            last = s.first_frame + s.frame_count - 1
            indices |= {s.first_frame, (s.first_frame + last) // 2, last}
        for path in write_previews(video, frames, args.preview, tuple(sorted(indices))):
            print(f"preview {path}")


if __name__ == "__main__":
    main()
