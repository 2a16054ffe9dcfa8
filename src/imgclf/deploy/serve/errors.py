"""Every refusal of ``imgclf serve`` and the studio is one JSON line, ``{"error": …}``, with its HTTP status: an
:class:`~imgclf.errors.ImgclfError` (its ``status``, else 400), an unknown address or method (404, 405), a
malformed request (422)."""

from collections.abc import Callable

from imgclf.errors import ImgclfError


def answer_in_one_line(app, malformed: Callable[[list[dict]], str]) -> None:
    """Register on the FastAPI ``app`` the handlers that answer every refusal as ``{"error": …}``.

    Args:
        malformed: the line for a request FastAPI could not validate, given its errors (Pydantic's
            ``[{"loc", "msg", "type"}, …]``).
    """
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    async def refused(request, exc: ImgclfError):
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400))

    async def not_there(request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    async def not_understood(request, exc: RequestValidationError):
        return JSONResponse({"error": malformed(list(exc.errors()))}, status_code=422)

    app.add_exception_handler(ImgclfError, refused)
    app.add_exception_handler(HTTPException, not_there)
    app.add_exception_handler(RequestValidationError, not_understood)
