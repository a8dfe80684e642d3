"""The trip track drawing: every point inside the drawing, tiles only when the owner configured a tile URL."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.web.track import draw_track

points = st.lists(st.tuples(st.floats(-80, 80), st.floats(-179, 179)), min_size=2, max_size=30)


@given(points)
def test_every_point_of_a_track_is_drawn_inside_the_picture(track):
    drawing = draw_track(track, 640, 400)
    assert drawing is not None and not drawing.tiles
    for pair in drawing.polyline.split():
        x, y = map(float, pair.split(","))
        assert -0.1 <= x <= 640.1 and -0.1 <= y <= 400.1


def test_tiles_come_only_from_the_configured_url_and_cover_the_picture():
    track = [(48.137, 11.575), (48.140, 11.580), (48.150, 11.600)]
    assert draw_track(track[:1]) is None
    drawing = draw_track(track, 640, 400, tiles_url="https://tiles.example/{z}/{x}/{y}.png")
    assert drawing is not None and drawing.tiles
    assert all(t.url.startswith("https://tiles.example/") for t in drawing.tiles)
    assert min(t.left for t in drawing.tiles) <= 0 and min(t.top for t in drawing.tiles) <= 0
    assert max(t.left for t in drawing.tiles) + 256 >= 640 and max(t.top for t in drawing.tiles) + 256 >= 400
