"""The web server's entry point (uvicorn): async views on Django's ASGI handler, the rest as WSGI.

Why two handlers: under Django's ASGI handler every sync middleware method and every sync
view hops to a thread of its own, which made an API call cost about twice the server CPU
of running the same sync stack once in a worker thread (bench/RESULTS.md). So plain API
calls go through Django's WSGI handler on a thread pool (a2wsgi), and only the paths in
``settings.ASGI_NATIVE_PATHS`` (server-sent event streams, which must not hold a thread
while they wait on a model) go to the ASGI handler.
"""

import os
import re

from a2wsgi import WSGIMiddleware
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi = get_asgi_application()  # sets Django up first
django_wsgi = WSGIMiddleware(get_wsgi_application(), workers=settings.WEB_THREADS)
native = re.compile("|".join(settings.ASGI_NATIVE_PATHS)) if settings.ASGI_NATIVE_PATHS else None


async def application(scope, receive, send) -> None:
    if scope["type"] == "http" and not (native and native.match(scope["path"])):
        await django_wsgi(scope, receive, send)
    else:
        await django_asgi(scope, receive, send)
