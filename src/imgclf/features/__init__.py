"""The feature stage: a backbone's features computed once and kept (per dataset and per image), and the
class prototypes few-shot heads are made from. Used by training, ``suspects``, ``triage`` and few-shot alike."""
