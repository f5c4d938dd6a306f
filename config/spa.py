"""Serves the built single-page app; assets come from whitenoise under /static/."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie

MISSING_BUILD = """<!doctype html><title>Arbiter</title>
<p>The frontend is not built yet. Run <code>make run</code> (or <code>make frontend</code>).</p>"""


@ensure_csrf_cookie
def spa_index(request: HttpRequest) -> HttpResponse:
    index = settings.FRONTEND_DIST / "index.html"
    if not index.exists():
        return HttpResponse(MISSING_BUILD, status=503)
    response = HttpResponse(index.read_text(encoding="utf-8"))
    response["Cache-Control"] = "no-cache"
    return response
