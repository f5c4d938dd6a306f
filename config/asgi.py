"""The web server's entry point (uvicorn): async views on Django's ASGI handler, the rest as WSGI.

Why two handlers: under Django's ASGI handler every sync middleware method and every sync
view hops to a thread of its own, which made an API call cost about twice the server CPU
of running the same sync stack once in a worker thread (bench/RESULTS.md). So plain API
calls go through Django's WSGI handler on a thread pool (a2wsgi), and only the paths in
``settings.ASGI_NATIVE_PATHS`` (server-sent event streams, which must not hold a thread
while they wait on a model) go to the ASGI handler.
"""

import gc
import os
import re

from a2wsgi import WSGIMiddleware
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi = get_asgi_application()  # sets Django up first
# Django's WSGIHandler returns an HttpResponse, which iterates as bytes: a WSGI app at runtime.
django_wsgi = WSGIMiddleware(get_wsgi_application(), workers=settings.WEB_THREADS)  # type: ignore[arg-type]
native = re.compile("|".join(settings.ASGI_NATIVE_PATHS)) if settings.ASGI_NATIVE_PATHS else None


def _freeze_startup_objects() -> None:
    """Keep what startup built out of the garbage collector's full passes.

    A web process holds ~160k objects from imports and setup that live as long as it does. A
    full (generation 2) collection walked all of them whenever enough request garbage had
    piled up: 70-280 ms with the GIL held, during which every request of that process waited
    (the one-in-a-hundred 300-500 ms requests in bench/annotation_load at C=32). Frozen, they
    are never scanned; what requests leave behind is collected as before.
    """
    get_resolver().check()  # imports every view and serializer now, not on a first request
    gc.collect()
    gc.freeze()


_freeze_startup_objects()


async def application(scope, receive, send) -> None:
    if scope["type"] == "http" and not (native and native.match(scope["path"])):
        await django_wsgi(scope, receive, send)
    else:
        await django_asgi(scope, receive, send)
