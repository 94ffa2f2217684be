"""Drafting: form letters, versions, approval, apply-to-batch and outbound delivery."""
