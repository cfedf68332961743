from src.application.handlers.ai import ProcessAIJobHandler
from src.application.handlers.base import Stopper
from src.application.handlers.video import ProcessVideoJobHandler, VideoLimits

__all__ = ["ProcessAIJobHandler", "ProcessVideoJobHandler", "Stopper", "VideoLimits"]
