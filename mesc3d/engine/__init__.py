"""Training/evaluation machinery shared by the CLIs: schedules, resume checkpoints, DDP, batching."""
