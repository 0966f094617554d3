"""Measuring tools: detection quality against ground truth (`evaluate`, by the rule in
`matching`), speed, memory and footprint (`benchmark`), and resident memory over a long run
(`soak`). Not needed on a board."""
