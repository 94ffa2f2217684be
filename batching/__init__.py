"""Batching: text normalisation, similarity and campaign detection."""
