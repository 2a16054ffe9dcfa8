"""Fixing the data, not only the model: images whose label is probably wrong (:mod:`~imgclf.curation.suspects`)."""
