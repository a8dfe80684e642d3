"""A trip's track drawn without a map service: Web Mercator pixels for an SVG polyline, and, only when the
owner configured a tile URL, the tiles under it.

Pure functions over (lat, lon) points the recorder already rounded and zone-filtered; no
coordinate is printed on a page, only drawn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

TILE_PX = 256
MAX_ZOOM = 17


@dataclass(frozen=True)
class Tile:
    url: str
    left: float  # position in the drawing, px
    top: float


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    polyline: str  # SVG points "x,y x,y ..."
    tiles: tuple[Tile, ...] = ()


def _world_px(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    """Web Mercator pixel coordinates at `zoom` (the tile grid's)."""
    scale = TILE_PX * 2 ** zoom
    lat = max(-85.0511, min(85.0511, lat))
    x = (lon + 180.0) / 360.0 * scale
    sin = math.sin(math.radians(lat))
    y = (0.5 - math.log((1 + sin) / (1 - sin)) / (4 * math.pi)) * scale
    return x, y


def draw_track(points: list[tuple[float, float]], width: int = 640, height: int = 400,
               tiles_url: str = "") -> Drawing | None:
    """The largest zoom at which the track fits the drawing with a margin; None without two points."""
    if len(points) < 2:
        return None
    margin = 24
    zoom = MAX_ZOOM
    while zoom > 0:
        xs, ys = zip(*(_world_px(lat, lon, zoom) for lat, lon in points))
        if max(xs) - min(xs) <= width - 2 * margin and max(ys) - min(ys) <= height - 2 * margin:
            break
        zoom -= 1
    xs, ys = zip(*(_world_px(lat, lon, zoom) for lat, lon in points))
    left = (min(xs) + max(xs)) / 2 - width / 2  # world px at the drawing's top-left corner
    top = (min(ys) + max(ys)) / 2 - height / 2
    polyline = " ".join(f"{x - left:.1f},{y - top:.1f}" for x, y in zip(xs, ys))
    return Drawing(width, height, polyline, _tiles(tiles_url, zoom, left, top, width, height) if tiles_url else ())


def _tiles(url: str, zoom: int, left: float, top: float, width: int, height: int) -> tuple[Tile, ...]:
    count = 2 ** zoom
    tiles = []
    for ty in range(int(top // TILE_PX), int((top + height) // TILE_PX) + 1):
        for tx in range(int(left // TILE_PX), int((left + width) // TILE_PX) + 1):
            if 0 <= ty < count:
                tiles.append(Tile(url.format(z=zoom, x=tx % count, y=ty), tx * TILE_PX - left, ty * TILE_PX - top))
    return tuple(tiles)
