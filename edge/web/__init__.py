"""The local web app (`dashcam serve`): trips, clips, lock and unlock, export, a live view that only ever
sees redacted frames, and a status page, for a phone on the car's Wi-Fi.

- `auth`: the password (scrypt hash, 0600), sessions, CSRF tokens, login rate limit.
- `preview`: the live view's sink (a `DROP_OLDEST` outlet of the pipeline) and the latest JPEG.
- `footage`: what the pages read and change in the recordings folder (by segment id, never by path).
- `app`: the Starlette routes and Jinja2 templates; `server`: uvicorn in a thread or in front, and TLS.
Needs the optional `[web]` extra (starlette, uvicorn, jinja2, python-multipart).
"""
