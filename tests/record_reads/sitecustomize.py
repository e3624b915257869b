"""Test-only start-up hook: with this folder on PYTHONPATH and ``MESC3D_RECORD_CONFIG_READS=DIR`` in the
environment, every Python process (the smoke run's Snakemake jobs, started by tests/conftest.py)
installs the config-reads recorder (``mesc3d.config_reads``) before any other code runs.  The package
itself never imports the recorder."""

import os

if os.environ.get("MESC3D_RECORD_CONFIG_READS"):
    from mesc3d.config_reads import install

    install()
