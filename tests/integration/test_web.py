"""The web app, served by a real `dashcam serve` (uvicorn) and driven over HTTP and by a real headless Chromium:
sessions, CSRF, rate limit, Range requests, ids never paths, locks that survive retention, a zip export that
verifies, and a live view that only ever gets redacted frames."""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="the web tests need the [web] and [test] extras")
pytest.importorskip("starlette", reason="the web app needs the [web] extra")

from edge.evidence.keys import DeviceKey  # noqa: E402
from edge.evidence.verify import verify  # noqa: E402
from edge.record.loop import LoopOptions, LoopStore  # noqa: E402
from edge.record.retention import RetentionPolicy  # noqa: E402
from conftest import free_port, small_frames, wait_for_port, write_clip  # noqa: E402
from edge.camera import SAMPLE_VIDEO  # noqa: E402
from recording import FPS, dashcam_command, feed  # noqa: E402
from test_evidence import signed_recorder  # noqa: E402

PASSWORD = "correct horse battery"
SCREENSHOTS = Path(os.environ.get("DASHCAM_SCREENSHOTS", "")) if os.environ.get("DASHCAM_SCREENSHOTS") else None


def _set_password(config: Path) -> None:
    subprocess.run(dashcam_command("serve", "--config", str(config), "--set-password"), input=PASSWORD + "\n",
                   text=True, check=True, capture_output=True)


@contextlib.contextmanager
def _serving(config: Path, port: int) -> Iterator[subprocess.Popen]:
    """`dashcam serve` with a password set, listening on `port` until the block ends."""
    _set_password(config)
    process = subprocess.Popen(dashcam_command("serve", "--config", str(config)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        process.communicate(timeout=20)


@dataclass
class Served:
    url: str
    recordings: Path
    config: Path
    key: DeviceKey


@pytest.fixture
def served(tmp_path) -> Iterator[Served]:
    """Three signed one-second segments (one trip) and `dashcam serve` on a free port."""
    state = tmp_path / "state"
    key = DeviceKey.load_or_create(state)
    rec, _signer = signed_recorder(tmp_path / "rec", key)
    feed(rec, 0, 3 * FPS)
    rec.close()
    port = free_port()
    config = tmp_path / "dashcam.yaml"
    config.write_text(f"record:\n  directory: {tmp_path / 'rec'}\nevidence:\n  key_dir: {state}\n"
                      f"web:\n  port: {port}\n"
                      "gps:\n  privacy_zones: [{name: home, lat: 48.13512, lon: 11.58198, radius_m: 300}]\n")
    with _serving(config, port):
        yield Served(f"http://127.0.0.1:{port}", tmp_path / "rec", config, key)


def _login(served: Served) -> httpx.Client:
    client = httpx.Client(base_url=served.url, follow_redirects=False, timeout=30)
    response = client.post("/login", data={"password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    return client


def _csrf(client: httpx.Client, page: str) -> str:
    html = client.get(page).text
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def _segment_ids(served: Served) -> list[str]:
    return sorted(p.stem for p in served.recordings.glob("dashcam_*.mp4"))


def test_every_page_and_file_needs_a_session(served):
    anonymous = httpx.Client(base_url=served.url, follow_redirects=False, timeout=30)
    first = _segment_ids(served)[0]
    for page in ("/", "/trips/1", f"/segments/{first}", "/live", "/status"):
        response = anonymous.get(page)
        assert response.status_code == 303 and response.headers["location"] == "/login", page
    for path in (f"/segments/{first}/video", f"/segments/{first}/download", "/trips/1/export.zip", "/live.jpg"):
        assert anonymous.get(path).status_code == 401, path
    assert anonymous.post(f"/segments/{first}/lock", data={"csrf": "x"}).status_code == 401
    forged = httpx.Client(base_url=served.url, cookies={"dashcam_session": "guessed"}, follow_redirects=False)
    assert forged.get("/").status_code == 303


def test_wrong_passwords_are_refused_and_repeated_ones_slowed(served):
    client = httpx.Client(base_url=served.url, follow_redirects=False, timeout=30)
    for _ in range(5):
        response = client.post("/login", data={"password": "wrong"})
        assert response.status_code == 401 and "wrong password" in response.text
        assert "set-cookie" not in response.headers
    response = client.post("/login", data={"password": PASSWORD})  # even the right one must wait now
    assert response.status_code == 429 and "wait" in response.text


def test_state_changes_need_the_session_csrf_token(served):
    client = _login(served)
    first = _segment_ids(served)[0]
    assert client.post(f"/segments/{first}/lock", data={}).status_code == 403
    assert client.post(f"/segments/{first}/lock", data={"csrf": "not-it"}).status_code == 403
    assert not (served.recordings / "locked" / f"{first}.mp4").exists()
    token = _csrf(client, f"/segments/{first}")
    assert client.post(f"/segments/{first}/lock", data={"csrf": token}).status_code == 303
    assert (served.recordings / "locked" / f"{first}.mp4").exists()
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    assert client.get("/").status_code == 303  # the session is gone


def test_clips_are_served_with_range_requests(served):
    client = _login(served)
    first = _segment_ids(served)[0]
    data = (served.recordings / f"{first}.mp4").read_bytes()
    whole = client.get(f"/segments/{first}/video")
    assert whole.status_code == 200 and whole.content == data and whole.headers["accept-ranges"] == "bytes"
    part = client.get(f"/segments/{first}/video", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = client.get(f"/segments/{first}/video", headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == data[-50:]
    assert client.get(f"/segments/{first}/video", headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416
    download = client.get(f"/segments/{first}/download")
    assert f'filename="{first}.mp4"' in download.headers["content-disposition"]


def test_segments_are_reached_by_id_never_by_path(served):
    client = _login(served)
    first = _segment_ids(served)[0]
    (served.recordings / "dashcam_2026-11-21_09-00-00Z.mp4").symlink_to("/etc/passwd")
    (served.recordings / "dashcam_2026-11-21_09-00-01Z.mp4.partial").write_bytes(b"being written")
    for path in ("/segments/..%2F..%2F..%2Fetc%2Fpasswd/video", "/segments/dashcam_2026-11-21_09-00-00Z/video",
                 "/segments/dashcam_2026-11-21_09-00-01Z/video", f"/segments/{first}.mp4/video",
                 "/segments/index.sqlite3/video", "/trips/99", "/trips/99/export.zip"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"root:" not in response.content


def test_a_locked_segment_survives_retention_and_an_unlocked_one_goes_back_to_the_loop(served):
    client = _login(served)
    ids = _segment_ids(served)
    token = _csrf(client, "/trips/1")
    assert client.post(f"/segments/{ids[0]}/lock", data={"csrf": token}).status_code == 303
    everything_old = LoopOptions(RetentionPolicy.from_preset("eu-72h", max_age_hours=0.01, max_bytes=0,
                                                             min_free_bytes=0))
    LoopStore.open(served.recordings, everything_old).close()  # a recorder's start: the 2026-11-21 footage expired
    assert [p.stem for p in served.recordings.rglob("dashcam_*.mp4")] == [ids[0]]
    locked_manifest = served.recordings / "locked" / f"{ids[0]}.manifest"
    assert verify(locked_manifest, served.key.public_path).ok  # the web's lock is a signed amendment
    page = client.get(f"/segments/{ids[0]}").text
    assert "Locked: never deleted automatically" in page
    assert client.post(f"/segments/{ids[0]}/unlock", data={"csrf": token}).status_code == 303
    assert (served.recordings / f"{ids[0]}.mp4").exists()
    assert not (served.recordings / "locked" / f"{ids[0]}.mp4").exists()
    LoopStore.open(served.recordings, everything_old).close()
    assert not list(served.recordings.rglob("dashcam_*.mp4"))


def test_a_trip_export_downloads_as_a_zip_that_verifies(served, tmp_path):
    client = _login(served)
    response = client.get("/trips/1/export.zip")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / "trip-1"
    names = sorted(p.name for p in folder.iterdir())
    assert len([n for n in names if n.endswith(".mp4")]) == 3 and "trip-1.gpx" in names
    assert "export-statement.json" in names and "device-key.pub.pem" in names
    assert verify(folder, served.key.public_path).ok


def test_the_status_page_shows_no_coordinates(served):
    client = _login(served)
    page = client.get("/status").text
    assert "Recording</th><td>no" in page and "GPS fix" in page and "Uploads</th><td>none" in page
    assert "48.13" not in page and "11.58" not in page and "(hidden)" in page


def test_the_status_page_shows_the_last_doctor_preview_to_a_session_only(served, tmp_path):
    doctor_config = tmp_path / "doctor.yaml"
    doctor_config.write_text(served.config.read_text() + "redact:\n  masks: [{name: dashboard screen, points: "
                             "[[0, 0.75], [1, 0.75], [1, 1], [0, 1]]}]\n")
    client = _login(served)
    assert client.get("/doctor-preview.jpg").status_code == 404 and 'id="preview"' not in client.get("/status").text
    subprocess.run(dashcam_command("doctor", "--config", str(doctor_config), "--gps-seconds", "0.1"),
                   capture_output=True, text=True, timeout=300)
    assert 'id="preview"' in client.get("/status").text
    response = client.get("/doctor-preview.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    height = image.shape[0]
    assert image[int(height * 0.76):].max() <= 8 and image[:int(height * 0.7)].std() > 20  # masked; a scene above
    anonymous = httpx.Client(base_url=served.url, timeout=30)
    assert anonymous.get("/doctor-preview.jpg").status_code == 401


def test_with_tls_the_app_serves_https_with_a_self_signed_certificate_and_a_secure_cookie(tmp_path):
    state, port = tmp_path / "state", free_port()
    (tmp_path / "rec").mkdir()
    config = tmp_path / "tls.yaml"
    config.write_text(f"record:\n  directory: {tmp_path / 'rec'}\nevidence:\n  key_dir: {state}\n"
                      f"web:\n  port: {port}\n  tls: true\n")
    with _serving(config, port):
        with pytest.raises(httpx.ConnectError):  # not a certificate anyone vouches for
            httpx.get(f"https://127.0.0.1:{port}/login", timeout=10)
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=30) as client:
            response = client.post("/login", data={"password": PASSWORD})
        assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]
        assert (state / "web-cert.pem").is_file() and (os.stat(state / "web-cert-key.pem").st_mode & 0o077) == 0


def test_a_port_in_use_or_no_password_is_one_clear_line(tmp_path):
    (tmp_path / "rec").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        config = tmp_path / "c.yaml"
        config.write_text(f"record:\n  directory: {tmp_path / 'rec'}\nevidence:\n  key_dir: {tmp_path / 's'}\n"
                          f"web:\n  port: {taken.getsockname()[1]}\n")
        nopassword = subprocess.run(dashcam_command("serve", "--config", str(config)), capture_output=True,
                                    text=True, timeout=60)
        assert nopassword.returncode == 2 and "dashcam serve --set-password" in nopassword.stderr
        _set_password(config)
        busy = subprocess.run(dashcam_command("serve", "--config", str(config)), capture_output=True, text=True,
                              timeout=60)
    assert busy.returncode == 2 and "cannot listen on 127.0.0.1" in busy.stderr and "Traceback" not in busy.stderr


# ---- a real headless Chromium ---------------------------------------------------------------------------------

@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium ([test] extra)")
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("no chromium and chromedriver here (apt install chromium chromium-driver; .ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,900",
                     "--autoplay-policy=no-user-gesture-required", "--mute-audio"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _shot(driver, name: str, tmp_path: Path) -> None:
    """A screenshot of each page: in the test's folder, and in DASHCAM_SCREENSHOTS when set (docs/)."""
    for folder in (tmp_path / "screenshots", SCREENSHOTS):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(folder / f"{name}.png"))


def _wait(condition, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def _text(browser, element_id: str) -> str:
    """An element's text, or "" while the page is being replaced (a form was just sent)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    try:
        return browser.find_element(By.ID, element_id).text
    except WebDriverException:
        return ""


def _browser_login(browser, served: Served, password: str = PASSWORD) -> None:
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/login")
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "login").click()
    if password == PASSWORD:  # the session cookie is set once the trips page has loaded
        _wait(lambda: browser.current_url.rstrip("/") == served.url)
    else:
        _wait(lambda: _text(browser, "error"))


def test_in_a_browser_log_in_open_a_trip_play_lock_and_export(served, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/trips/1")
    assert browser.current_url.endswith("/login")  # no session: the login page
    _browser_login(browser, served, "not the password")
    assert "wrong password" in browser.find_element(By.ID, "error").text
    _shot(browser, "login", tmp_path)

    _browser_login(browser, served)
    rows = browser.find_elements(By.CSS_SELECTOR, "#trips tr")
    assert len(rows) == 2  # the header and trip 1
    _shot(browser, "trips", tmp_path)
    browser.find_element(By.LINK_TEXT, "1").click()
    segments = browser.find_elements(By.CSS_SELECTOR, "#segments a")
    assert len(segments) == 3
    _shot(browser, "trip", tmp_path)

    segments[0].click()
    _wait(lambda: browser.execute_script("return document.getElementById('clip').readyState") >= 2)
    browser.execute_script("var v = document.getElementById('clip'); v.muted = true; v.play();")
    _wait(lambda: browser.execute_script("return document.getElementById('clip').currentTime") > 0.2)
    _shot(browser, "segment", tmp_path)
    browser.find_element(By.ID, "lock").click()
    _wait(lambda: "Locked" in _text(browser, "lock-state"))
    assert len(list((served.recordings / "locked").glob("*.mp4"))) == 1

    browser.get(served.url + "/trips/1")
    browser.find_element(By.ID, "export").click()
    archive = _wait(lambda: next(iter((tmp_path / "downloads").glob("trip-1.zip")), None), 60)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tmp_path / "unzipped")
    assert verify(tmp_path / "unzipped" / "trip-1", served.key.public_path).ok

    browser.get(served.url + "/status")
    assert "Recording" in browser.find_element(By.ID, "status").text
    _shot(browser, "status", tmp_path)


def test_in_a_browser_the_live_view_updates_while_dashcam_run_records(tmp_path, browser):
    from selenium.webdriver.common.by import By

    port, state = free_port(), tmp_path / "state"
    # The sample twice over at 640x360 (24 s): time enough for the browser steps on a loaded machine.
    frames = list(small_frames(SAMPLE_VIDEO, (640, 360), range(360)).values())  # 250 MB, not 1 GB at 720p
    clip = write_clip(tmp_path / "drive.mp4", frames + frames, fps=30)
    config = tmp_path / "live.yaml"
    config.write_text(f"source:\n  kind: file\n  path: {clip}\n"
                      f"evidence:\n  key_dir: {state}\nweb:\n  enabled: true\n  port: {port}\n  live_fps: 4\n"
                      f"record:\n  directory: {tmp_path / 'rec'}\n")
    _set_password(config)
    process = subprocess.Popen(dashcam_command("run", "--config", str(config)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # the sample, at its own 30 fps
    try:
        wait_for_port(port, process, 120)
        served = Served(f"http://127.0.0.1:{port}", tmp_path / "rec", config, DeviceKey.load_or_create(state))
        _browser_login(browser, served)
        browser.get(served.url + "/live")
        image = browser.find_element(By.ID, "live")
        _wait(lambda: browser.execute_script("return arguments[0].naturalWidth", image) == 640, 60)
        numbers = []
        for _ in range(3):
            number = browser.execute_script("""
                var request = new XMLHttpRequest(); request.open('GET', '/live.jpg', false); request.send();
                return parseInt(request.getResponseHeader('X-Frame-Number'));""")
            numbers.append(number)
            time.sleep(0.8)
        assert numbers == sorted(numbers) and numbers[-1] > numbers[0]  # new frames keep coming
        _shot(browser, "live", tmp_path)
        browser.find_element(By.ID, "incident").click()  # what `dashcam lock` does, from the phone
        assert "Kept" in _wait(lambda: _text(browser, "message"))
    finally:
        process.terminate()  # SIGTERM finishes the segment, with the lock the phone asked for
        process.communicate(timeout=60)
    assert process.returncode == 0
    assert list((tmp_path / "rec" / "locked").glob("*.mp4"))
