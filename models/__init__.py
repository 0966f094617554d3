"""Shipped convdet detectors (installed as the `convdet_models` package); see README.md here."""
