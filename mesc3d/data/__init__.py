"""Data: procedural benchmark (shapes, render, synthetic), readers of the real layouts (shapenet,
pix3d), point sampling, image helpers and the torch ``ReconDataset`` (only ``dataset`` imports torch)."""
