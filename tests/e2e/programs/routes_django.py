"""A one-file Django project for test_requests.py: route templates as
Django gives them (request.resolver_match.route, an include()d one
joined to its prefix), and a 404 that has none."""
import django
from django.conf import settings

settings.configure(DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"],
                   SECRET_KEY="gcmon-test-only", MIDDLEWARE=[], INSTALLED_APPS=[])

from django.http import HttpResponse  # noqa: E402
from django.urls import include, path  # noqa: E402


def user(request, uid):
    return HttpResponse("user %d\n" % uid)


def item(request, name):
    return HttpResponse("item %s\n" % name)


urlpatterns = [
    path("user/<int:uid>/", user),
    path("api/", include([path("items/<slug:name>", item)])),
]

django.setup()
from django.core.wsgi import get_wsgi_application  # noqa: E402

app = get_wsgi_application()
