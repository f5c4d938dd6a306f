"""The live-turn stream: server-sent events from a plain async view on Django's ASGI handler.

DRF has no async views, so this one reuses DRF's authentication classes (session login with
its CSRF check, or an API token) in one sync step, then streams without holding a thread
while it waits on the model (config/asgi.py routes ``settings.ASGI_NATIVE_PATHS`` here).
"""

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings

from models_serving.client import ModelVersionDisabled, ModelVersionNotReady

from . import live_turns, sessions
from .access import AccessDenied, access_conversation_by_id


@csrf_exempt  # DRF's SessionAuthentication checks CSRF for cookie logins; tokens need none
async def session_stream(request: HttpRequest, session_id: int) -> HttpResponseBase:
    """``POST /api/v1/sessions/<id>/stream/`` with ``{"regenerate": false}``: stream the turn.

    Draws the session's K candidates (``candidates_per_turn``) for its open turn and streams
    them side by side as ``text/event-stream``; the events are listed in
    annotation/live_turns.py. Before the stream starts, errors are JSON like the rest of the
    API: 403 (not logged in, or no CSRF token), 404 (not the caller's session), 400 (bad body),
    409 (the turn is not waiting for candidates: write a message, judge, or send
    ``regenerate: true`` to redraw an unjudged pair; or the session's model is switched off).
    Only the session's owner may stream it.
    """
    if request.method != "POST":
        response: HttpResponseBase = _error(405, f'Method "{request.method}" not allowed.')
        response["Allow"] = "POST"
        return response
    # On the ASGI handler the response is streamed on this event loop, so the model requests
    # may start from inside the opening step, once the turn is checked and the candidates are
    # drawn, while the pair is still being written (run.begin_soon). Under WSGI this loop ends
    # with the view and the response is read on another one: the run is made there instead.
    run = live_turns.TurnRun() if isinstance(request, ASGIRequest) else None
    try:
        opened = await live_turns.db_step(_open_turn)(
            request, session_id, run.begin_soon if run else None
        )
    except BaseException:
        if run:
            await run.abort()
        raise
    if isinstance(opened, HttpResponseBase):
        if run:
            await run.abort()
        return opened
    if run:
        run.attach(opened)
    response = StreamingHttpResponse(_sse(run, opened), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on as it comes
    return response


def _open_turn(
    request: HttpRequest, session_id: int, on_drawn: Callable[[sessions.LiveDraw], None] | None
) -> sessions.LiveTurnPlan | JsonResponse:
    """Authenticate, parse, check access and create the turn's pair: one sync step."""
    api_request = Request(
        request,
        # The stubs type these settings as dotted paths; APISettings imports the classes.
        parsers=[parser() for parser in api_settings.DEFAULT_PARSER_CLASSES],  # type: ignore[operator]
        authenticators=[auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES],  # type: ignore[operator]
    )
    try:
        user = api_request.user
        if not user.is_authenticated:
            return _error(403, "Authentication credentials were not provided.")
        regenerate = _regenerate_flag(api_request.data)
    except exceptions.AuthenticationFailed as exc:
        return _error(403, str(exc.detail))  # as DRF answers when session auth comes first
    except exceptions.APIException as exc:  # no CSRF token, or a body that does not parse
        return _error(exc.status_code, str(exc.detail))
    except ValueError as exc:
        return JsonResponse(
            {"detail": f"Invalid input: regenerate. {exc}", "errors": {"regenerate": [str(exc)]}},
            status=400,
        )
    try:
        conversation = access_conversation_by_id(user, session_id)
        return sessions.turn_stream_open(
            conversation=conversation, regenerate=regenerate, on_drawn=on_drawn
        )
    except AccessDenied as exc:
        return _error(404, str(exc))
    except sessions.SessionConflict as exc:
        return _error(409, str(exc))
    except ModelVersionNotReady:  # its own message names the version: annotators are blind
        return _error(409, "this session's model is still being loaded; try again in a minute")
    except ModelVersionDisabled:
        return _error(409, "this session's model is switched off; ask a researcher")


def _regenerate_flag(data: object) -> bool:
    if not isinstance(data, Mapping):
        raise ValueError("send a JSON object")
    regenerate = data.get("regenerate", False)
    if not isinstance(regenerate, bool):
        raise ValueError("must be true or false")
    return regenerate


async def _sse(run: live_turns.TurnRun | None, plan: sessions.LiveTurnPlan) -> AsyncIterator[str]:
    if run is None:  # WSGI: the streams begin here, on the loop that reads them
        run = live_turns.TurnRun()
        run.attach(plan)
    # aclosing: when the client leaves, the events iterator is closed at once, which
    # cancels the upstream requests and stores what was streamed.
    async with aclosing(live_turns.live_turn_events(run)) as batches:
        async for batch in batches:  # one write per batch: fewer sends under load
            yield "".join(_sse_block(event) for event in batch)


def _sse_block(event: live_turns.Event) -> str:
    if event == live_turns.KEEPALIVE:
        return ": keepalive\n\n"
    name, data = event
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)
