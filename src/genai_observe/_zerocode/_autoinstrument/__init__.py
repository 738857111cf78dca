"""Holds the ``sitecustomize`` that genai-observe-instrument puts on the child's PYTHONPATH."""
