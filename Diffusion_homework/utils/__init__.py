"""Helpers shared by the Diffusion homework scripts (model loading, image files, sampling loops)."""
