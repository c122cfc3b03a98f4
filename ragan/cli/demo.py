"""``ragan demo``: the main job — the whole pipeline on the bundled sample, offline."""

from __future__ import annotations

import json

from ragan.demo import DEMO_GAN, QUICK_KIMG


def register(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="Run the whole pipeline on the bundled PneumoniaMNIST sample (prepare, train, generate, evaluate).",
        description="Prepare the PneumoniaMNIST sample that ships with ragan, train a small conditional "
        f"{DEMO_GAN['model']} (ragan.demo.DEMO_GAN), generate labelled synthetic images and evaluate them. "
        "Re-running resumes.",
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    parser.add_argument(
        "--kimg",
        type=float,
        default=None,
        help=f"training length in thousands of images (default: {DEMO_GAN['kimg']:g}; {QUICK_KIMG:g} with --quick)",
    )
    parser.add_argument("--image-size", type=int, default=32, help="resolution, a power of two (default: 32)")
    parser.add_argument("--n", type=int, default=400, help="synthetic images to generate (default: 400)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every stage (default: 0)")
    parser.add_argument("--no-evaluate", action="store_true", help="stop after generation")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_KIMG:g} kimg of training (unless --kimg is given) and an evaluation "
        "with one seed and a few epochs (minutes less on a CPU)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    from ragan.demo import first_screen, output_lines, run_demo

    paths = run_demo(
        args.out,
        image_size=args.image_size,
        kimg=args.kimg,
        num_images=args.n,
        evaluate=not args.no_evaluate,
        quick=args.quick,
        seed=args.seed,
    )
    if args.quiet:  # otherwise the progress messages said it
        if "report" in paths:
            report = json.loads((paths["report"].parent / "report.json").read_text(encoding="utf-8"))
            print("\n".join(first_screen(report)))
        print("\n".join(["done. Outputs:", *output_lines(paths)]))
    return 0
