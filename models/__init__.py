"""Shipped convdet detectors (installed as the `convdet.models` package); see README.md here."""
