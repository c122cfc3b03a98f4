"""``ragan train MODEL --data DIR --out RUN_DIR``: train a GAN (thin wrapper of :func:`ragan.train`).

``ragan train MODEL --help`` lists MODEL's hyperparameters and the training options: the
``configure`` hook adds one flag per declared field once it knows MODEL. Precedence:
defaults < ``--config`` file < flags; ``--dry-run`` prints the resolved configuration as JSON.
"""

from __future__ import annotations

import json

from ragan.cli.common import model_word

# Flags that take no value (everything else takes one); used to find MODEL among the words.
_SWITCHES = {"-h", "--help", "--resume", "--dry-run", "-q", "--quiet", "-v", "--verbose", "-vv"}


def register(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="Train a GAN on a prepared dataset (checkpoints, sample grids, MLflow run).",
        description="Train MODEL on the train split of a prepared dataset. The run directory receives "
        "config.json, checkpoints/, samples/grid-<kimg>.png, model.keras and run.json; every run is an "
        "MLflow run (default store: sqlite:///RUN_DIR/mlflow.db). Interrupted runs continue exactly "
        "with --resume. SIGTERM/SIGINT finish the current step, checkpoint it and exit 143/130. "
        "'ragan train MODEL --help' lists MODEL's hyperparameters.",
    )
    parser.add_argument("model", metavar="MODEL", help="a registered GAN (see 'ragan hparams'), e.g. dcgan")
    parser.add_argument("--data", default=None, help="prepared dataset directory (optional with --resume)")
    parser.add_argument("--out", required=True, help="run directory (new or empty; an existing run with --resume)")
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML/JSON file of model hyperparameters and training options (flat, or under model:/training:)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        choices=("auto",),
        help="continue the run in --out from its newest readable checkpoint; start one when --out is missing "
        "or empty ('--resume auto' is the same, spelled out for requeued jobs)",
    )
    parser.add_argument(
        "--init-from",
        default=None,
        metavar="RUN_OR_FILE",
        help="start from the weights of another run (or .keras file) where layer shapes match",
    )
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///RUN_DIR/mlflow.db)",
    )
    parser.add_argument("--experiment", default="ragan", help="MLflow experiment name (default: ragan)")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved configuration as JSON and exit")
    parser.set_defaults(func=run, model_config_class=None)
    return parser


def configure(parser, argv):
    """Add the training options, and MODEL's hyperparameters once MODEL is known."""
    from ragan.training.config import TrainConfig

    name = model_word(argv, _SWITCHES, optional_value=("--resume", "auto"))
    if name is not None:
        from ragan.registry import get_gan

        cls = get_gan(name)
        cls.config_class.add_arguments(parser, title=f"{cls.gan_name} hyperparameters")
        parser.set_defaults(model_config_class=cls.config_class)
    TrainConfig.add_arguments(parser, title="training options")


def run(args) -> int:
    from ragan.config import load_overrides
    from ragan.errors import RaganError
    from ragan.registry import get_gan
    from ragan.training.config import TrainConfig, split_overrides

    config_class = args.model_config_class or get_gan(args.model).config_class
    model_overrides: dict = {}
    train_overrides: dict = {}
    if args.config:
        model_overrides, train_overrides = split_overrides(
            load_overrides(args.config), config_class, source=args.config
        )
    # Flags override the file; only flags the user gave are overrides.
    for spec in config_class.hparams():
        value = getattr(args, f"hp_{spec.name}", None)
        if value is not None:
            model_overrides[spec.name] = value
    for spec in TrainConfig.hparams():
        value = getattr(args, f"hp_{spec.name}", None)
        if value is not None:
            train_overrides[spec.name] = value
    if args.data is None and not args.resume:
        raise RaganError("--data is required (a prepared dataset directory; make one with 'ragan prepare').")

    common = dict(
        config=model_overrides,
        train_config=train_overrides,
        resume=bool(args.resume),
        init_from=args.init_from,
    )
    if args.dry_run:
        from ragan.training.loop import describe_training

        print(json.dumps(describe_training(args.model, args.data, args.out, **common), indent=2))
        return 0

    from ragan.training.loop import run_summary, train

    run_dir = train(
        args.model,
        args.data,
        args.out,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        **common,
    )
    if args.quiet and _is_chief_process():
        print(f"trained {args.model}: {run_dir}")
        print("\n".join(run_summary(run_dir)))
    return 0


def _is_chief_process() -> bool:
    """False for the non-chief workers of a multi-worker run (TF_CONFIG, Slurm): they write no run files."""
    from ragan.training.strategy import is_chief_process

    return is_chief_process()
