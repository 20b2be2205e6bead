"""Offline scoring: sentence embeddings, question-demoted alignment signals, and a calibrated ridge map.

Heavy imports (torch, sentence-transformers) happen only when an encoder is first built.
"""
