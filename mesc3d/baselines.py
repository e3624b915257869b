"""Baselines run on the same split as the model, so our numbers are interpretable on any data.

* ``class_mean`` — oracle class, no image: every test shape of class c gets the class *medoid*, the
  training GT cloud with the smallest mean CD-L2 to the other training clouds of c (a point cloud has
  no canonical average; the medoid is the closest real shape to one).
* ``retrieval`` — nearest neighbour in image space (Tatarchenko et al., "What do single-view 3D
  reconstruction networks learn?", CVPR 2019): the prediction is the GT cloud of the training shape
  whose rendered image is closest to the test image.  The embedding is the object's silhouette
  (foreground = pixels that differ from the background colour read at the image corners), area-
  downsampled to ``side x side``, centred and L2-normalised; it ignores the per-shape colour.  The
  database holds ``views`` augmented training views per shape (the views the model trains on).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mesc3d.ops import chamfer_distance


def silhouette_embedding(images: torch.Tensor, side: int = 32, tol: float = 0.02) -> torch.Tensor:
    """images (B, 3, H, W) in [0, 1] -> (B, side*side) unit-norm silhouette embeddings."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images (B, 3, H, W), got {tuple(images.shape)}")
    corners = torch.stack([images[:, :, 0, 0], images[:, :, 0, -1], images[:, :, -1, 0], images[:, :, -1, -1]], 1)
    background = corners.median(dim=1).values  # (B, 3)
    fg = ((images - background[:, :, None, None]).abs().amax(1, keepdim=True) > tol).float()  # (B, 1, H, W)
    small = F.adaptive_avg_pool2d(fg, side).flatten(1)  # (B, side*side)
    small = small - small.mean(1, keepdim=True)
    return F.normalize(small, dim=1)


def class_medoids(points: torch.Tensor, classes: torch.Tensor, max_candidates: int = 200,
                  n_sub: int = 512, seed: int = 0) -> dict[int, int]:
    """Index of the medoid training cloud of every class.  points (S, G, 3), classes (S,)."""
    g = torch.Generator().manual_seed(seed)
    sub = torch.randperm(points.shape[1], generator=g)[:n_sub]
    pts = points[:, sub].double()
    out: dict[int, int] = {}
    for c in torch.unique(classes).tolist():
        members = torch.nonzero(classes == c).flatten()
        cand = members[torch.randperm(len(members), generator=g)[:max_candidates]]
        cost = torch.zeros(len(cand), dtype=torch.float64)
        for i, a in enumerate(cand.tolist()):
            x = pts[a].expand(len(cand), -1, -1)
            cost[i] = chamfer_distance(x, pts[cand], norm="l2", batch_reduction="sum")
        out[c] = int(cand[int(torch.argmin(cost))])
    return out


def nearest_neighbours(query: torch.Tensor, database: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Index of the most cosine-similar database row for every query row (B, D) x (K, D) -> (B,)."""
    out = []
    for start in range(0, query.shape[0], chunk):
        sims = query[start:start + chunk] @ database.T
        out.append(sims.argmax(1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)
