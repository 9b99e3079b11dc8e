"""molebench: one pipeline to train, compose and score LoRA experts the same way for every method."""

__version__ = "0.1.0"
