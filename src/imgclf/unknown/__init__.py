"""Calibrated probabilities and an honest "unknown": temperature scaling and the out-of-distribution detectors
(:mod:`~imgclf.unknown.detector`), fitted on a run's validation images after training
(:mod:`~imgclf.unknown.calibrate`)."""
