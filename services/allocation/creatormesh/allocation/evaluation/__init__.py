"""Live-stream evaluation (domain code, no transport): validation, the local evaluator (image
measurements, MiniLM transcript features, engagement) and the vision-LLM evaluator with fallback."""

from creatormesh.allocation.evaluation.local import LocalEvaluator
from creatormesh.allocation.evaluation.model import (
    DIMENSIONS,
    LOCAL,
    VISION_LLM,
    BasicMetrics,
    Evaluation,
    Keyframe,
    Limits,
    Reason,
    StreamInput,
    validate_stream,
)
from creatormesh.allocation.evaluation.vision import VisionLLMEvaluator
from creatormesh.common.embeddings import TextEmbedder

__all__ = [
    "DIMENSIONS",
    "LOCAL",
    "VISION_LLM",
    "BasicMetrics",
    "Evaluation",
    "Keyframe",
    "Limits",
    "LocalEvaluator",
    "Reason",
    "StreamInput",
    "TextEmbedder",
    "VisionLLMEvaluator",
    "validate_stream",
]
