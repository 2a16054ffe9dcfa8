"""The run folder: what ``fit`` writes and every later stage reads (:mod:`~imgclf.runs.record` names its files and
reads them; :mod:`~imgclf.runs.folder` makes, marks and replaces the folders)."""
