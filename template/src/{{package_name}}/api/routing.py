"""What a request matched: its route's template, and the methods its path allows."""

from fastapi.routing import iter_route_contexts
from starlette.routing import Match, Router
from starlette.types import Scope

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def route_template(scope: Scope) -> str:
    """The matched route's path, e.g. `/api/v1/users/{user_id}`; `<unmatched>` if none.

    Values in the path are data, so logs name the template, never the path itself. An included
    router's routes know only their own part of the path: the whole one is looked up once per
    application, as the OpenAPI document does.
    """
    route = scope.get("route")
    if route is None:
        return "<unmatched>"
    app = scope["app"]
    templates: dict[int, str] | None = getattr(app.state, "route_templates", None)
    if templates is None or id(route) not in templates:
        templates = {
            id(context.original_route): context.path_format
            for context in iter_route_contexts(app.routes)
            if context.path_format is not None
        }
        # A route no context knows keeps its own path, and is not looked up again.
        templates.setdefault(id(route), getattr(route, "path", "<unmatched>"))
        app.state.route_templates = templates
    return templates[id(route)]


def allowed_methods(router: Router, scope: Scope) -> list[str]:
    """Every method some route of `router` serves at this request's path."""
    return [
        method
        for method in METHODS
        if any(
            route.matches({**scope, "method": method})[0] == Match.FULL for route in router.routes
        )
    ]
