from src.application.handlers.ai import ProcessAIJobHandler, QuotaWait
from src.application.handlers.base import HandlerDependencies, Stopper
from src.application.handlers.video import ProcessVideoJobHandler, VideoLimits

__all__ = [
    "HandlerDependencies",
    "ProcessAIJobHandler",
    "ProcessVideoJobHandler",
    "QuotaWait",
    "Stopper",
    "VideoLimits",
]
