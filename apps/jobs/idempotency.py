"""The ``Idempotency-Key`` header of creating POSTs: the same key, user, endpoint and body
within ``REELQUEUE_IDEMPOTENCY_KEY_TTL_S`` answer what the first request answered.

A view opts in with :func:`idempotent` and passes :func:`request_of` to the use case, which
keeps the key's answer in the job's own transaction. A request racing another with the same
key waits for that one's transaction (the key's row), then replays its answer.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from apps.jobs import services
from apps.jobs.queries import owner_id
from src.application.ports import IdempotentRequest, KeptAnswer
from src.application.replays import key_problem
from src.domain.errors import ConcurrentUpdate, IdempotencyKeyTaken, IllegalTransition, ValidationError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_ATTRIBUTE = "idempotent_request"

Replay = Callable[[Request, KeptAnswer], Response]
# A racing request with the same key may find the job already changed by the first one.
_LOST_RACE = (IdempotencyKeyTaken, IllegalTransition, ConcurrentUpdate)


def idempotent(replay: Replay, *, keep_body: bool = False) -> Callable[[Callable[..., Response]], Any]:
    """Make a view's ``post`` honour ``Idempotency-Key``. ``replay`` rebuilds the first answer
    from what was kept; ``keep_body``: the view creates nothing that commits the key itself
    (an upload grant), so its successful answer's body is kept as the key's answer."""

    def decorate(post: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(post)
        def handle(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            key = request.headers.get(HEADER)
            if key is None:
                return post(view, request, *args, **kwargs)
            keyed = _request(request, key)
            requests = services.idempotent_requests()
            answer = requests.previous(keyed)
            if answer is None:
                setattr(request, _ATTRIBUTE, keyed)
                try:
                    response = post(view, request, *args, **kwargs)
                    if keep_body and response.status_code < 300:
                        requests.keep(keyed, response.data)
                    return response
                except _LOST_RACE:
                    answer = requests.previous(keyed)
                    if answer is None:
                        raise
            response = replay(request, answer)
            response[REPLAYED_HEADER] = "true"
            return response

        return handle

    return decorate


def request_of(request: Request) -> IdempotentRequest | None:
    """The request's idempotency key for the use case (``None``: the request has none)."""
    return getattr(request, _ATTRIBUTE, None)


def _request(request: Request, key: str) -> IdempotentRequest:
    problem = key_problem(key)
    if problem is not None:
        raise ValidationError({HEADER: f"The {HEADER} header {problem}."})
    return IdempotentRequest(owner_id=owner_id(request.user), key=key,
                             endpoint=f"{request.method} {request.path}", fingerprint=fingerprint(request))


def fingerprint(request: Request) -> str:
    """A digest of the parsed body: the same JSON in another key order or spacing is the same body."""
    data = request.data
    if hasattr(data, "lists"):  # a form's QueryDict
        data = dict(data.lists())
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
