"""Training: recipes, the fit loop configuration, atomic checkpoints and resume, plots, distribution."""
