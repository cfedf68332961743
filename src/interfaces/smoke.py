"""``python -m src.interfaces.cli smoke runway|luma``: one real, paid generation with the configured key.

The cheapest valid job each provider offers goes out through the same adapter the workers use;
every request and answer is printed (the key masked), the task is polled to its end and the video
is saved locally. Operators run it by hand after setting a key; CI runs it against the fake APIs.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import requests

from src.application.ports import RemoteProvider, RemoteState, RemoteTask
from src.config import Settings
from src.domain.errors import PermanentError
from src.domain.jobs import AIJob, Mode
from src.infrastructure.observability.logs import REDACTED, Redactor

TERMINAL = (RemoteState.SUCCEEDED, RemoteState.FAILED, RemoteState.CANCELLED)
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "proxy-authorization"})
SECRET_NAME = re.compile(r"(?:^|_)(?:api_?key|key|token|secret|password|signature)s?$")
PROMPT = "a paper boat drifting on a calm pond, soft morning light"
SMOKE_IMAGE = "smoke.png"  # a plain 1280x720 PNG made on the spot, sent inline (a data URI)
MAX_SHOWN_CHARS = 2000  # an answer longer than this is cut in the transcript


class SmokeAborted(Exception):
    """The operator did not confirm the spend."""


@dataclass(frozen=True, kw_only=True)
class SmokePlan:
    """What one provider's smoke test sends: the cheapest job it accepts."""

    provider: str
    key_setting: str
    job: AIJob
    image_url: str | None
    cost: str


def plan(provider: str) -> SmokePlan:
    if provider == "runway":  # gen4_turbo is Runway's cheapest model; it needs an image
        job = _smoke_job(model="gen4_turbo", provider="runway", mode=Mode.IMAGE_TO_VIDEO, duration_s=2,
                         ratio="1280:720", input_image=SMOKE_IMAGE)
        return SmokePlan(provider="runway", key_setting="REELQUEUE_RUNWAY_API_KEY", job=job,
                         image_url=None,  # the adapter sends the stored image inline, as in production
                         cost="about 10 Runway credits (2 s of gen4_turbo)")
    if provider == "luma":
        job = _smoke_job(model="ray-flash-2", provider="luma", mode=Mode.TEXT_TO_VIDEO, duration_s=5,
                         ratio="16:9")
        return SmokePlan(provider="luma", key_setting="REELQUEUE_LUMA_API_KEY", job=job, image_url=None,
                         cost="one 5 s ray-flash-2 video at 540p")
    raise ValueError(f"unknown provider {provider!r}; choose runway or luma")


def _smoke_job(*, model: str, provider: str, mode: Mode, duration_s: int, ratio: str,
               input_image: str | None = None) -> AIJob:
    now = datetime.now(timezone.utc)
    return AIJob(owner_id="smoke-test", production_path="fashion", prompt=PROMPT, model=model,
                 provider=provider, mode=mode, duration_s=duration_s, ratio=ratio, input_image=input_image,
                 created_at=now, updated_at=now)


def run_smoke(settings: Settings, provider: str, *, out: TextIO, stdin: TextIO, yes: bool,
              output: Path | None, poll_s: float, timeout_s: float) -> int:
    smoke = plan(provider)
    key = getattr(settings, f"{provider}_api_key")
    if not key:
        raise PermanentError(f"{smoke.key_setting} is not set: the smoke test needs the real key")
    _confirm(smoke, out=out, stdin=stdin, yes=yes)
    transcript = Transcript(out=out, redactor=Redactor([key]))
    adapter = _provider(settings, provider, transcript.session())
    try:
        task_id = adapter.submit(smoke.job, input_image_url=smoke.image_url, callback_url=None)
    except PermanentError as exc:
        raise PermanentError(f"{exc} (check {smoke.key_setting} if the key was refused)") from exc
    print(f"submitted: task {task_id}", file=out)
    final = _poll(adapter, task_id, out=out, poll_s=poll_s, timeout_s=timeout_s)
    if final.state is not RemoteState.SUCCEEDED or not final.output_urls:
        print(f"the task ended {final.state.value}: {final.failure or 'no output'}", file=out)
        return 1
    dest = output or Path(f"smoke-{provider}-{task_id}.mp4")
    size = adapter.download(final.output_urls[0], dest)
    print(f"video saved: {dest.resolve()} ({size} bytes)", file=out)
    return 0


def _confirm(smoke: SmokePlan, *, out: TextIO, stdin: TextIO, yes: bool) -> None:
    print(f"smoke test against {smoke.provider}: {smoke.cost}, paid with {smoke.key_setting}", file=out)
    if yes:
        return
    print("this spends money; type yes to go on: ", end="", file=out, flush=True)
    if stdin.readline().strip().lower() != "yes":
        raise SmokeAborted("not confirmed: nothing was sent (pass --yes to skip the question)")


def _provider(settings: Settings, provider: str, session: requests.Session) -> RemoteProvider:
    if provider == "runway":
        from src.infrastructure.inference.runway import RunwayProvider
        from src.infrastructure.memory import InMemoryStorage

        storage = InMemoryStorage()
        storage.put_bytes(SMOKE_IMAGE, _png(1280, 720), "image/png")
        return RunwayProvider(api_key=settings.runway_api_key, base_url=settings.runway_base_url,
                              timeout_s=settings.provider_timeout_s,
                              create_timeout_s=settings.provider_create_timeout_s, session=session,
                              storage=storage)
    from src.infrastructure.inference.luma import LumaProvider

    return LumaProvider(api_key=settings.luma_api_key, base_url=settings.luma_base_url,
                        timeout_s=settings.provider_timeout_s,
                        create_timeout_s=settings.provider_create_timeout_s, session=session,
                        resolution="540p")


def _poll(adapter: RemoteProvider, task_id: str, *, out: TextIO, poll_s: float,
          timeout_s: float) -> RemoteTask:
    deadline = time.monotonic() + timeout_s
    while True:
        task = adapter.poll(task_id)
        print(f"state: {task.state.value} ({task.progress:.0f}%)", file=out)
        if task.state in TERMINAL:
            return task
        if time.monotonic() >= deadline:
            raise PermanentError(f"task {task_id} did not finish within {timeout_s:.0f} s; "
                                 "it may still finish at the provider")
        time.sleep(poll_s)


@dataclass
class Transcript:
    """Prints every HTTP exchange of a session, secrets masked."""

    out: TextIO
    redactor: Redactor

    def session(self) -> requests.Session:
        session = requests.Session()
        session.hooks["response"].append(self._show)
        return session

    def _show(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        self._print(f">>> {request.method} {request.url}")
        for name, value in request.headers.items():
            shown = REDACTED if name.lower() in SECRET_HEADERS else _text(value)
            self._print(f"    {_text(name)}: {shown}")
        if isinstance(request.body, bytes | str) and request.body:
            self._print(f"    {self._body(request.body)}")
        self._print(f"<<< {response.status_code} {response.reason}")
        if "json" in response.headers.get("Content-Type", ""):
            self._print(f"    {self._body(response.content)}")
        else:
            length = response.headers.get("Content-Length", "?")
            self._print(f"    ({response.headers.get('Content-Type', 'no content type')}, {length} bytes)")

    def _body(self, raw: bytes | str) -> str:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            text = json.dumps(_mask_fields(json.loads(text)))
        except ValueError:
            pass
        return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + " ...(cut)"

    def _print(self, line: str) -> None:
        print(self.redactor(line), file=self.out)


def _mask_fields(value: Any) -> Any:
    """Key-like fields (``api_key``, ``token``...) masked; long data URIs shortened."""
    if isinstance(value, dict):
        return {k: REDACTED if _secret_name(k) else _mask_fields(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_fields(v) for v in value]
    if isinstance(value, str) and value.startswith("data:") and len(value) > 80:
        return value[:40] + f"...({len(value)} chars)"
    return value


def _secret_name(name: Any) -> bool:
    """``api_key``, ``apiKey``, ``token``, ``client-secret``... but not ``keyframes``."""
    if not isinstance(name, str):
        return False
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_")
    return SECRET_NAME.search(words) is not None


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (70, 130, 180)).save(buffer, format="PNG")
    return buffer.getvalue()


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
