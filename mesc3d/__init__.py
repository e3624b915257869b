"""mesc3d: a reproducible re-implementation of MESC-3D (CVPR 2025) as one Snakemake DAG.

Package layout (imports point one way):
    cli/  -> config, data, models, ops, tables, viz
    models -> ops -> cuda_ext (optional)
    data   -> ops
"""

__version__ = "0.1.0"
