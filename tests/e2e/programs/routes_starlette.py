"""A Starlette app for test_requests.py: route templates as Starlette
declares them (Route.path; a Mount's prefix joined), and a 404 that has
none."""
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route


async def user(request):
    return PlainTextResponse("user %d\n" % request.path_params["uid"])


async def item(request):
    return PlainTextResponse("item %s\n" % request.path_params["name"])


app = Starlette(routes=[
    Route("/user/{uid:int}", user),
    Mount("/api", routes=[Route("/items/{name}", item)]),
])
