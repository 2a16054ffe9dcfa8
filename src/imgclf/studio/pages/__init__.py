"""The studio's pages and their JSON endpoints, one module an area: data (browse, check, fix, capture), jobs
(training and the other long commands), runs (reports, comparisons, exports), try (predict, webcam, Grad-CAM) and
inbox (unlabelled pictures in triage's order). Each module's ``router(studio)`` returns a FastAPI ``APIRouter``."""
