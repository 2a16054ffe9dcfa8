"""What a run says about itself: a plain-language diagnosis of its curves, and a one-file HTML report."""

from imgclf.report.diagnosis import Diagnosis, diagnose

__all__ = ["Diagnosis", "diagnose"]
