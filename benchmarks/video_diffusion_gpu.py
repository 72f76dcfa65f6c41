"""Seconds per prompt of the full-size Wan2.1 T2V 1.3B architecture, for a GPU machine.

Latency does not depend on weight values, so the pipeline is built from Wan2.1-T2V-1.3B's published configs
(transformer: 30 layers, 12 heads x 128, FFN 8960; UMT5-XXL text encoder; the Wan VAE) with random weights, directly
on the device in bf16, with diffusers' own WanPipeline. It then times --prompts generations of --frames frames at
--height x --width with --steps steps (classifier-free guidance on, as the service runs it), after one warm-up.
The seed's goal (AdFame): < 30 s per prompt and 4 prompts per 2 minutes, i.e. <= 30 s each.

    python benchmarks/video_diffusion_gpu.py [--frames 16 --height 480 --width 832 --steps 50 --prompts 4]
    python benchmarks/video_diffusion_gpu.py --device cpu --layers 1 --text-layers 1 --steps 1 --height 64 \
        --width 64 --frames 5 --prompts 1    # a smoke run of the script itself on a CPU (not a measurement)

Options --cpu-offload and --vae-tiling measure the service's memory settings.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

WAN_1_3B = {
    "patch_size": (1, 2, 2), "num_attention_heads": 12, "attention_head_dim": 128, "in_channels": 16,
    "out_channels": 16, "text_dim": 4096, "freq_dim": 256, "ffn_dim": 8960, "num_layers": 30,
    "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 1024,
}  # fmt: skip
UMT5_XXL = {
    "vocab_size": 256384, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
    "relative_attention_num_buckets": 32, "feed_forward_proj": "gated-gelu", "dense_act_fn": "gelu_new",
    "is_gated_act": True,
}  # fmt: skip
PROMPTS = [
    "a runner in bright red sneakers on a city street at sunset, slow motion",
    "a cup of coffee steaming on a wooden table in the morning light, close up",
    "a silver car driving along a coastal road, aerial view, golden hour",
    "a smiling chef tossing pizza dough in a busy kitchen, cinematic lighting",
]


def build(args: argparse.Namespace) -> Any:
    import diffusers
    import transformers

    from creatormesh.video_diffusion.builder import build_tokenizer

    d: Any = diffusers
    t: Any = transformers
    device, dtype = torch.device(args.device), torch.bfloat16 if args.device != "cpu" else torch.float32
    with torch.device(device):
        transformer = d.WanTransformer3DModel(**{**WAN_1_3B, "num_layers": args.layers or WAN_1_3B["num_layers"]})
        vae = d.AutoencoderKLWan()  # the library defaults are Wan2.1's VAE
        text = t.UMT5EncoderModel(
            t.UMT5Config(**{**UMT5_XXL, "num_layers": args.text_layers or UMT5_XXL["num_layers"]})
        )
    pipe = d.WanPipeline(
        tokenizer=build_tokenizer(), text_encoder=text.to(dtype).eval(), transformer=transformer.to(dtype).eval(),
        vae=vae.to(torch.float32).eval(), scheduler=d.UniPCMultistepScheduler(
            flow_shift=3.0, prediction_type="flow_prediction", use_flow_sigmas=True
        ),
    )  # fmt: skip
    if args.cpu_offload and args.device != "cpu":
        pipe.enable_model_cpu_offload(device=args.device)
    if args.vae_tiling:
        pipe.vae.enable_tiling()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--frames", type=int, default=16, help="output frames (the model makes the next 4k+1)")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--layers", type=int, default=0, help="transformer layers (0: the real 30)")
    parser.add_argument("--text-layers", type=int, default=0, help="text encoder layers (0: the real 24)")
    parser.add_argument("--cpu-offload", action="store_true")
    parser.add_argument("--vae-tiling", action="store_true")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run this on a GPU machine (or --device cpu for a smoke run)")
    started = time.perf_counter()
    pipe = build(args)
    params = sum(p.numel() for p in pipe.transformer.parameters()) / 1e9
    print(f"built in {time.perf_counter() - started:.1f} s: transformer {params:.2f} B parameters on {args.device}")
    frames = args.frames + (1 - args.frames) % 4

    def one(prompt: str) -> float:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        pipe(prompt=prompt, num_frames=frames, height=args.height, width=args.width, num_inference_steps=args.steps,
             guidance_scale=5.0, output_type="np", generator=torch.Generator("cpu").manual_seed(0))  # fmt: skip
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    warm = one("warm up")
    times = [one(PROMPTS[i % len(PROMPTS)]) for i in range(args.prompts)]
    mean = statistics.mean(times)
    print(f"{frames} frames {args.width}x{args.height}, {args.steps} steps, CFG 5: warm-up {warm:.1f} s")
    print(f"seconds per prompt: mean {mean:.1f}, min {min(times):.1f}, max {max(times):.1f}  (goal < 30)")
    print(f"prompts per 2 minutes: {120 / mean:.1f}  (goal >= 4)")
    if args.device.startswith("cuda"):
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB on {torch.cuda.get_device_name()}")


if __name__ == "__main__":
    main()
