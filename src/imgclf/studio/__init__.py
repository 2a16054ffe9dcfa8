"""imgclf studio: the whole loop in a browser, over the same library functions as the command line (issue 28).

:mod:`~imgclf.studio.project` finds a project's data folders and keeps every path inside it,
:mod:`~imgclf.studio.thumbs` makes and caches thumbnails, :mod:`~imgclf.studio.app` is the FastAPI app
(``imgclf studio PROJECT``).
"""
