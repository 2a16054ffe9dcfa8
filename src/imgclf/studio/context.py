"""What every page of the studio shares: the project folder, the templates, the job queue and the token — the app's
:class:`Studio`, which each endpoint takes as ``Depends(studio_of)`` (:data:`StudioHere`)."""

# No ``from __future__ import annotations``: FastAPI reads StudioHere's annotation.

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from imgclf.deploy.serve.guards import TOKEN_COOKIE
from imgclf.studio.jobs import Jobs
from imgclf.studio.project import unavailable_folders


@dataclass
class Studio:
    """One studio: ``root`` (the project, resolved), ``env`` (its Jinja2 templates), ``jobs`` (the background queue)
    and ``token`` (required of every request off loopback, else ``None``)."""

    root: Path
    env: object
    jobs: Jobs
    token: str | None = None

    def page(self, template: str, request, **context):
        """``template`` rendered as an HTML answer; the token of a ``?token=`` link kept as an httponly cookie. Every
        page names the project's folders that link out of it (not available: never read)."""
        from fastapi.responses import HTMLResponse

        unavailable = unavailable_folders(self.root)
        html = self.env.get_template(template).render(project=self.root.name, unavailable=unavailable, **context)
        answer = HTMLResponse(html)
        if self.token is not None and request.query_params.get("token") == self.token:
            answer.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        return answer


def studio_of(request: Request) -> Studio:
    """The :class:`Studio` of the app answering ``request``."""
    return request.app.state.studio


#: An endpoint's parameter for its studio: ``def page(studio: StudioHere)``.
StudioHere = Annotated[Studio, Depends(studio_of)]
