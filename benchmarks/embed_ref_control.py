"""Control for the matmul reference of ``embed.py``: a "pass" made of the reference GEMMs themselves.

``embed.py`` scores an embedding pass against the GEMM rate of the model's own linear shapes, timed two ways:
the best rate of the run (a GEMM of a fraction of a second, taken at the machine's fastest moment) and
``--adjacent-ref`` (timed every few seconds inside the pass, each stretch against the rates around it). This
script runs, instead of a model, the same seven GEMMs of one SmolLM2-135M-shaped decoder layer (or ``--shape``)
over and over for ``--seconds``, and scores that "pass" both ways: a perfect pass of pure GEMMs. On a machine
whose speed is steady both read about 1.0; on one whose speed drifts, the best-of-run score falls below 1.0 by
the drift, which bounds how far below 1.0 that score can put any pass on that machine, while the adjacent score
stays near 1.0.

    python benchmarks/embed_ref_control.py --seconds 60 --adjacent-ref 3
"""

from __future__ import annotations

import argparse
import time

from embed import AdjacentReference, gemm_rate

SHAPES = {  # one decoder layer: q, k, v, o, gate, up, down (in, out)
    "smollm2": [(576, 576), (576, 192), (576, 192), (576, 576), (576, 1536), (576, 1536), (1536, 576)],
}

class _Layer:
    """A stand-in with one decoder layer of linear modules, read by ``embed.gemm_rate``."""

    def __init__(self, shapes: list[tuple[int, int]]) -> None:
        import torch

        self.layer = torch.nn.Sequential(*[torch.nn.Linear(i, o, bias=False) for i, o in shapes])
        self.model = torch.nn.Module()
        self.model.layers = torch.nn.ModuleList([self.layer])

    def get_decoder(self):  # noqa: ANN201
        return self.model

    def parameters(self):  # noqa: ANN201
        return self.layer.parameters()

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="smollm2")
    p.add_argument("--rows", type=int, default=2048, help="tokens per batch (rows of every GEMM)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the pure-GEMM pass")
    p.add_argument("--adjacent-ref", type=float, default=3.0, metavar="S")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    shapes = SHAPES[args.shape]
    model = _Layer(shapes)
    xs = {i: torch.randn(args.rows, i) for i, _ in shapes}
    ws = [torch.randn(i, o) for i, o in shapes]
    flops_per_batch = 2 * args.rows * sum(i * o for i, o in shapes)
    adjacent = AdjacentReference(model, args.adjacent_ref)
    adjacent.rows = args.rows
    best_ref = 0.0
    with torch.inference_mode():
        for r in range(args.repeats):
            adjacent.start()
            w0 = time.perf_counter()
            batches = 0
            while time.perf_counter() - w0 - adjacent.spent_w < args.seconds:
                for (i, _), w in zip(shapes, ws):
                    xs[i] @ w
                batches += 1
                adjacent.after_batch(args.rows, args.rows)
            wall = time.perf_counter() - w0
            spent, _ = adjacent.finish()
            rates = [a for _, _, a, _ in adjacent.stretches] + [adjacent.stretches[-1][3]]
            best_ref = max(best_ref, max(gemm_rate(model, args.rows).values()), *rates)
            achieved = flops_per_batch * batches / (wall - spent)
            adj = adjacent.fraction(flops_per_batch / args.rows)
            print(f"repeat {r + 1}: {batches} batches of {args.rows} rows in {wall - spent:.1f} s: {achieved / 1e9:.1f} "
                  f"GFLOP/s; adjacent score {adj:.3f}; rates timed inside: {adjacent.rate_summary()}")
    print(f"best GEMM rate of the run: {best_ref / 1e9:.1f} GFLOP/s; best-of-run score of the last repeat: "
          f"{achieved / best_ref:.3f}")

if __name__ == "__main__":
    main()
