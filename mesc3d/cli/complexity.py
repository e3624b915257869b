"""mesc3d complexity: parameter counts, FLOPs and latency of MESC-3D (Tab. 8/9).

    mesc3d complexity --preset paper --json
    mesc3d complexity --config RUN.yaml --out results/complexity/{exp}.csv [--json] [--set k=v ...]

Parameter counts (always; printed as one JSON object with ``--json``):
  ``params_trainable_without_prior``  the run's model with ``prior_injection=none`` (Tab. 8 "w/o prior";
                                      paper preset = BaseModel wiring, paper 24.05M),
  ``params_trainable_with_prior``     the run's model with its prior injection (``concat_after_mit`` if the
                                      run has none) incl. a trainable telinear, PLUS the 3DSPL prompt
                                      parameters (paper 24.97M),
  ``params_total``                    every parameter of the with-prior model (incl. the frozen Point-MAE)
                                      plus the prompt parameters (frozen text tower excluded),
  ``prior_params_source``             where the prompt count comes from: ``mesc3d.models.text_prompt.PromptBank``
                                      (built offline from ``prompt.*``) or the analytic official count (docs/design.md),
  plus the paper's numbers, the relative difference and a per-part breakdown.
With ``--out`` (needs ``--config``) also latency per image (batch 1, eval mode, after warm-up, median of
``eval.latency_repeats`` runs) and FLOPs per image (``torch.utils.flop_counter.FlopCounterMode``: matmul
and conv FLOPs, 2 per multiply-add) with and without prior at n_points 2048 and 8192 (Tab. 9), written as
CSV ``exp,prior,n_points,params_trainable,params_total,flops_per_image,latency_s,device`` (one row per
prior x n_points; prior in {with, without}).  Latency covers the model forward with a cached prior
vector (the prior is a per-class lookup, docs/design.md), not the text encoder.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time

import torch

from mesc3d.cli._common import setup_logging
from mesc3d.config import PRESETS, from_dict, load_config, parse_overrides, deep_merge, to_dict

log = logging.getLogger("mesc3d.complexity")

PAPER_M = {"without_prior": 24.05, "with_prior": 24.97}
N_POINTS = (2048, 8192)
CSV_COLUMNS = ["exp", "prior", "n_points", "params_trainable", "params_total", "flops_per_image",
               "latency_s", "device"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d complexity", description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="used when --config is absent")
    p.add_argument("--config", help="resolved run YAML")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--json", action="store_true", help="print the parameter summary as JSON on stdout")
    p.add_argument("--out", help="CSV with latency/FLOPs rows (needs --config)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def official_prompt_params(width: int = 512, n_layers: int = 12, n_deep: int = 100) -> int:
    """Official 3DSPL trainables: 77xW prompt table + DPT (prompts, deep prompts, proj, norm), docs/design.md."""
    table = 77 * width
    dpt = n_deep * width * n_layers + width * width + width + 2 * width
    return table + dpt


def prompt_params(cfg) -> tuple[int, int, str]:
    """(trainable prompt params, prior vector width, source)."""
    try:
        from mesc3d.models.text_prompt import PromptBank
    except ImportError:
        return official_prompt_params(n_deep=cfg.prompt.n_deep), 512, "analytic (docs/design.md: table 0.039M + DPT 0.878M)"
    bank = PromptBank(cfg.prompt, list(cfg.data.categories))
    n = sum(p.numel() for p in bank.prompt_parameters() if p.requires_grad)
    return n, int(bank.out_dim), f"mesc3d.models.text_prompt.PromptBank ({cfg.prompt.text_backend})"


def variant(cfg, prior: bool, n_points: int | None = None):
    d = to_dict(cfg)
    m = d["model"]
    if not prior:
        m["prior_injection"] = "none"
    elif m["prior_injection"] == "none":
        m["prior_injection"] = "concat_after_mit"
    if n_points is not None:
        m["n_points"] = n_points
    return from_dict(d)


def build(cfg, prior_in_dim: int):
    from mesc3d.models.mesc3d import MESC3D

    from mesc3d.engine.runtime import seed_everything

    seed_everything(cfg.seed)
    return MESC3D(cfg, prior_in_dim=prior_in_dim)


def param_summary(cfg) -> dict:
    n_prompt, prior_in_dim, source = prompt_params(cfg)
    without = build(variant(cfg, prior=False), prior_in_dim).parameter_counts()
    with_cfg = variant(cfg, prior=True)
    withp = build(with_cfg, prior_in_dim).parameter_counts()
    out = {
        "preset": cfg.preset,
        "exp": cfg.name,
        "esm_variant": cfg.model.esm_variant,
        "use_esm": cfg.model.use_esm,
        "prior_injection_with_prior": with_cfg.model.prior_injection,
        "params_trainable_without_prior": without["trainable"],
        "params_trainable_with_prior": withp["trainable"] + n_prompt,
        "params_model_trainable_with_prior": withp["trainable"],
        "params_prompt": n_prompt,
        "prior_in_dim": prior_in_dim,
        "prior_params_source": source,
        "params_prompt_official_analytic": official_prompt_params(),
        "params_total": withp["total"] + n_prompt,
        "params_total_without_prior": without["total"],
        "params_frozen_point_mae": without["point_encoder_total"],
        "paper_params_without_prior_M": PAPER_M["without_prior"],
        "paper_params_with_prior_M": PAPER_M["with_prior"],
        "rel_diff_without_prior": without["trainable"] / (PAPER_M["without_prior"] * 1e6) - 1.0,
        "rel_diff_with_prior": (withp["trainable"] + n_prompt) / (PAPER_M["with_prior"] * 1e6) - 1.0,
        "params_without_prior_plus_official_prompt": without["trainable"] + official_prompt_params(),
        "breakdown_without_prior": {k: v for k, v in without.items() if k.endswith("_trainable")},
        "breakdown_with_prior": {k: v for k, v in withp.items() if k.endswith("_trainable")},
    }
    out["note"] = ("paper 24.97M = the 768-wide BaseModel (24.05M) + prompt table + DPT "
                   "(= params_without_prior_plus_official_prompt); the concat-1280 decoder with prior is larger")
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model, device: torch.device, image_size: int, prior_in_dim: int, prior: bool, repeats: int) -> tuple[float, float]:
    """(median latency seconds, FLOPs) of one image, eval mode, no_grad."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.to(device).eval()
    img = torch.rand(1, 3, image_size, image_size, device=device)
    p = torch.randn(1, prior_in_dim, device=device) if prior else None
    with torch.no_grad():
        counter = FlopCounterMode(display=False)
        with counter:
            model(img, p)
        flops = float(counter.get_total_flops())
        for _ in range(3):  # warm-up
            model(img, p)
        _sync(device)
        times = []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            model(img, p)
            _sync(device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times), flops


def latency_rows(cfg, device: torch.device, summary: dict) -> list[dict]:
    n_prompt, prior_in_dim = summary["params_prompt"], summary["prior_in_dim"]
    rows = []
    for prior in (False, True):
        for n in N_POINTS:
            c = variant(cfg, prior, n)
            model = build(c, prior_in_dim)
            counts = model.parameter_counts()
            lat, flops = measure(model, device, c.data.image_size, prior_in_dim, prior, cfg.eval.latency_repeats)
            rows.append({"exp": cfg.name, "prior": "with" if prior else "without", "n_points": n,
                         "params_trainable": counts["trainable"] + (n_prompt if prior else 0),
                         "params_total": counts["total"] + (n_prompt if prior else 0),
                         "flops_per_image": flops, "latency_s": lat, "device": str(device)})
            log.info("prior=%s n_points=%d latency %.4f s flops %.3g", rows[-1]["prior"], n, lat, flops)
            del model
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.config:
        cfg = load_config(args.config, args.set)
    else:
        cfg = from_dict(deep_merge({"preset": args.preset}, parse_overrides(args.set)), source=f"preset {args.preset}")
    if args.out and not args.config:
        print("mesc3d complexity: --out needs --config (the run whose latency is measured)", file=sys.stderr)
        return 2
    summary = param_summary(cfg)
    if args.out:
        import pandas as pd

        from mesc3d.io import write_csv

        from mesc3d.engine.runtime import pick_device
        from mesc3d.engine.stage import device_name

        device = pick_device(args.device if args.device != "auto" else device_name(cfg, "complexity"))
        rows = latency_rows(cfg, device, summary)
        write_csv(args.out, pd.DataFrame(rows, columns=CSV_COLUMNS))
        summary["latency"] = rows
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=False))
    else:
        log.info("trainable params: without prior %.3fM (paper %.2fM), with prior %.3fM (paper %.2fM)",
                 summary["params_trainable_without_prior"] / 1e6, PAPER_M["without_prior"],
                 summary["params_trainable_with_prior"] / 1e6, PAPER_M["with_prior"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
