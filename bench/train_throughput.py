"""Training throughput of `brickyard train` against the bare model on the same machine and batch.

    make demo                                            (makes lakehouse/exports/demo)
    .venv/bin/python bench/train_throughput.py [--export lakehouse/exports/demo] [--preset tiny] [--steps 20]
    torchrun --nproc_per_node 8 bench/train_throughput.py --preset small ...   (on GPUs)

1. The trainer: `brickyard.training.train.train` on the export for --steps steps (FSDP2 over every rank,
   the streaming loader, clipping, AdamW, MLflow logging), in a throwaway lakehouse. Its tokens/s
   is the median of its per-step `tokens_per_s` metric after the first three steps (warm-up).
2. The floor: the same model (unwrapped, on one device), the same micro-batches, forward,
   backward and AdamW in a plain loop on batches already in memory; the median step.
Printed: both in tokens/s, the ratio trainer / bare (per rank), and on a GPU the trainer's MFU
against the device's dense bf16 peak (`brickyard.training.train.PEAK_TFLOPS`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def bare_step_tokens_per_s(model_cfg, seq_len: int, rank_batch: int, micro: int, device, dtype, steps: int) -> float:
    import torch
    from brickyard.model.moe import MoETransformer

    torch.manual_seed(0)
    model = MoETransformer(model_cfg).to(device=device, dtype=dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95))
    batch = torch.randint(0, 100000, (rank_batch, seq_len + 1), device=device)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        for m in batch.split(micro):
            model(m[:, :-1], m[:, 1:]).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return rank_batch * seq_len / statistics.median(times[3:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", default=str(REPO / "lakehouse" / "exports" / "demo"))
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--global-batch", type=int, default=8)
    ap.add_argument("--micro-batch", type=int, default=4)
    args = ap.parse_args()

    import torch
    from brickyard.model.presets import flops_per_token
    from brickyard.training.config import DataSettings, ModelSettings, TrackingSettings, TrainConfig
    from brickyard.training.train import peak_flops, train
    from mlflow import MlflowClient

    work = Path(tempfile.mkdtemp(prefix="brickyard-train-bench-"))
    os.environ["BRICKYARD_LAKEHOUSE"] = str(work)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    cfg = TrainConfig(name="bench", data=DataSettings(export=str(Path(args.export).resolve())), model=ModelSettings(args.preset),
                      global_batch_size=args.global_batch, micro_batch_size=args.micro_batch, max_steps=args.steps,
                      tracking=TrackingSettings(experiment="bench"))
    try:
        result = train(cfg)
        world = int(os.environ.get("WORLD_SIZE", 1))
        if int(os.environ.get("RANK", 0)) != 0:
            return 0
        client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow' / 'mlflow.db'}")
        hist = sorted(client.get_metric_history(result.run_id, "tokens_per_s"), key=lambda m: m.step)
        trainer = statistics.median(m.value for m in hist[3:])
        from brickyard.training.data import open_export

        _, manifest = open_export(cfg.export_dir())
        seq_len = manifest["seq_len"]
        model_cfg = cfg.model.build()
        device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        bare = bare_step_tokens_per_s(model_cfg, seq_len, args.global_batch // world, args.micro_batch, device, dtype, max(args.steps, 6))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.preset}, seq_len {seq_len}, global batch {args.global_batch} ({args.micro_batch} per micro-batch), "
          f"{world} x {device.type}, {args.steps} steps")
    print(f"  brickyard train (FSDP2, streaming, MLflow)   {trainer:12,.0f} tokens/s   ({trainer / world:,.0f} per rank)")
    print(f"  bare model loop, one device                  {bare:12,.0f} tokens/s")
    print(f"  ratio trainer per rank / bare                {trainer / world / bare:12.2f}")
    peak = peak_flops(device, None)
    if peak:
        print(f"  MFU (dense bf16 peak {peak / 1e12:.0f} TFLOP/s)            {flops_per_token(model_cfg, seq_len) * trainer / (peak * world):12.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
