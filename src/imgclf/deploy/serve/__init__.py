"""Serving a trained run: a local web app and JSON API (``imgclf serve``; FastAPI + uvicorn, the serve extra)."""
