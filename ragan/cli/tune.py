"""``ragan tune MODEL --data DIR --out DIR``: hyperparameter search (thin wrapper of :func:`ragan.tune`).

``ragan tune MODEL --help`` shows MODEL's search space (the declared ranges): the ``configure``
hook adds it to the help once it knows MODEL. The space is changed by a YAML/JSON ``--search``
file, then by ``--set NAME=VALUE`` (fix), ``--range NAME=LOW,HIGH[,log]`` and
``--choices NAME=A,B,...``; the flags win over the file. Re-running the same command resumes a
killed study. Distributed: set ``KERASTUNER_TUNER_ID`` (``chief`` / ``tuner0`` / ...),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` and run the same command in every process.
"""

from __future__ import annotations

import argparse
import json

# Flags that take no value (everything else takes one); used to find MODEL among the words.
_SWITCHES = {"-h", "--help", "--overwrite", "--dry-run", "--quiet"}
_MULTI_VALUE = {"--set", "--range", "--choices", "--tuner-option"}

DESCRIPTION = """\
Search MODEL's hyperparameters on a prepared dataset with KerasTuner. Every trial trains with
'ragan train' settings into OUT/trials/<id>/ and is an MLflow run (a child of the study's run);
the objective (KID by default, lower is better) compares the trial's generator with the
held-out real images (split 'val', else 'test'). A diverged trial is recorded as failed and
the search goes on. The best generator is exported to OUT/best ('ragan generate OUT/best');
OUT/trials.csv|md|png summarise the trials. Re-run the same command to resume a killed study.
"""

EXAMPLES = """\
examples:
  ragan tune dcgan --data prepared --out studies/dcgan --max-trials 20 --kimg-per-trial 50
  ragan tune wgan_gp --data prepared --out studies/wgan --tuner hyperband --max-kimg 200 \\
      --set latent_dim=128 --range gp_weight=5,15 --choices d_steps=3,5
  ragan tune dcgan --data prepared --out studies/b --tuner bayesian --search search.yaml
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "tune",
        help="Search a GAN's hyperparameters (random, Bayesian, Hyperband); trials are MLflow runs.",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="a registered GAN (see 'ragan hparams'), e.g. dcgan")
    parser.add_argument(
        "--data", required=True, help="prepared dataset directory (train split trains, val/test scores)"
    )
    parser.add_argument("--out", required=True, help="study directory (new, or the study to resume)")
    search = parser.add_argument_group("search")
    search.add_argument(
        "--tuner",
        choices=("random", "bayesian", "hyperband"),
        default="random",
        help="search algorithm (default: random)",
    )
    search.add_argument(
        "--max-trials",
        type=int,
        default=None,
        help="random/bayesian: number of trials (default 10); hyperband: optional cap",
    )
    search.add_argument(
        "--kimg-per-trial",
        type=float,
        default=20.0,
        help="random/bayesian: training length of each trial in kimg (default: 20)",
    )
    search.add_argument(
        "--max-kimg",
        type=float,
        default=None,
        help="hyperband: training length of the longest trials (default: --kimg-per-trial)",
    )
    search.add_argument(
        "--min-kimg",
        type=float,
        default=None,
        help="hyperband: training length of the shortest trials (default: max-kimg / factor^2)",
    )
    search.add_argument("--factor", type=int, default=3, help="hyperband: reduction factor (default: 3)")
    search.add_argument(
        "--search",
        default=None,
        metavar="FILE",
        help="YAML/JSON file: name: value (fix) | [low, high] (narrow) | [a, b, c] (choices) | "
        "{min:, max:, sampling:} | {choices: [...]}",
    )
    search.add_argument(
        "--set",
        action="append",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="fix hyperparameters or training options, e.g. --set latent_dim=64 batch_size=32",
    )
    search.add_argument(
        "--range",
        action="append",
        nargs="+",
        default=[],
        metavar="NAME=LOW,HIGH[,log]",
        help="search NAME between LOW and HIGH (linear, or log/reverse_log sampling)",
    )
    search.add_argument(
        "--choices",
        action="append",
        nargs="+",
        default=[],
        metavar="NAME=A,B,...",
        help="search NAME over these values",
    )
    search.add_argument(
        "--tuner-option",
        action="append",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="KerasTuner oracle options: max_retries_per_trial; bayesian: num_initial_points, "
        "alpha, beta; hyperband: hyperband_iterations",
    )
    search.add_argument(
        "--max-consecutive-failed-trials",
        type=int,
        default=3,
        help="stop after this many failed trials in a row (default: 3)",
    )
    search.add_argument("--seed", type=int, default=0, help="seed of the search, objective and training (default: 0)")
    objective = parser.add_argument_group("objective")
    objective.add_argument(
        "--objective",
        default="kid",
        help="kid (default), fid, or module:function taking (real, fake) image arrays in [-1, 1]",
    )
    objective.add_argument(
        "--extractor",
        choices=("auto", "domain", "pixels", "inception"),
        default="auto",
        help="features for KID/FID: auto (domain for labelled data, else pixels), domain "
        "(a classifier trained on the real train split), pixels, inception",
    )
    objective.add_argument(
        "--inception-weights",
        default=None,
        metavar="FILE",
        help="local InceptionV3 weights for --extractor inception ('imagenet' downloads)",
    )
    objective.add_argument(
        "--objective-images",
        type=int,
        default=1000,
        help="held-out real images compared, and as many generated (default: 1000)",
    )
    objective.add_argument(
        "--classifier-epochs", type=int, default=10, help="epochs of the domain feature classifier (default: 10)"
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite:///OUT/mlflow.db)")
    parser.add_argument("--experiment", default="ragan", help="MLflow experiment name (default: ragan)")
    parser.add_argument(
        "--overwrite", action="store_true", help="delete the study in OUT and start over (the MLflow store stays)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved study (search space, budget) as JSON and exit"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output (the summary is still printed)")
    parser.set_defaults(func=run)
    return parser


def _model_word(argv: list[str]) -> str | None:
    skip_next = False
    in_multi = False
    for word in argv:
        if skip_next:
            skip_next = False
            continue
        if word.startswith("-"):
            in_multi = word in _MULTI_VALUE
            skip_next = word not in _SWITCHES and "=" not in word and not in_multi
            continue
        if in_multi and "=" in word:
            continue
        return word
    return None


def configure(parser, argv):
    """Show MODEL's search space (the declared ranges) in ``ragan tune MODEL --help``."""
    name = _model_word(argv)
    if name is None:
        return
    from ragan.tuning.hypermodel import describe_declared

    parser.epilog = describe_declared(name) + "\n\n" + EXAMPLES


def _pairs(groups: list[list[str]], flag: str) -> list[tuple[str, str]]:
    from ragan.errors import RaganError

    pairs = []
    for word in (w for group in groups for w in group):
        name, sep, value = word.partition("=")
        if not sep or not name.strip():
            raise RaganError(f"{flag} {word!r}: write NAME=VALUE, e.g. {flag} latent_dim=64.")
        pairs.append((name.strip(), value.strip()))
    return pairs


def search_from_args(args) -> dict:
    """The search specification: the ``--search`` file, then ``--set``/``--range``/``--choices``.

    Example:
        >>> from ragan.cli.main import build_parser
        >>> argv = ["tune", "dcgan", "--data", "d", "--out", "o", "--range", "g_learning_rate=1e-5,1e-3,log"]
        >>> search_from_args(build_parser(argv).parse_args(argv))
        {'g_learning_rate': {'min': '1e-5', 'max': '1e-3', 'sampling': 'log'}}
    """
    from ragan.errors import RaganError
    from ragan.tuning.hypermodel import load_search_file

    spec = dict(load_search_file(args.search)) if args.search else {}
    for name, value in _pairs(args.set, "--set"):
        spec[name] = value
    for name, value in _pairs(args.range, "--range"):
        parts = [p.strip() for p in value.split(",")]
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise RaganError(f"--range {name}={value!r}: write NAME=LOW,HIGH or NAME=LOW,HIGH,log.")
        entry = {"min": parts[0], "max": parts[1]}
        if len(parts) == 3:
            entry["sampling"] = parts[2]
        spec[name] = entry
    for name, value in _pairs(args.choices, "--choices"):
        values = [p.strip() for p in value.split(",") if p.strip()]
        if not values:
            raise RaganError(f"--choices {name}={value!r}: give at least one value, e.g. {name}=a,b.")
        spec[name] = {"choices": values}
    return spec


def _tuner_options(args) -> dict:
    import yaml

    # YAML scalars: "3" -> 3, "2.5" -> 2.5, "true" -> True.
    return {name: yaml.safe_load(value) for name, value in _pairs(args.tuner_option, "--tuner-option")}


def run(args) -> int:
    from ragan.tuning.tuner import plan_study, tune

    options = dict(
        tuner=args.tuner,
        max_trials=args.max_trials,
        kimg_per_trial=args.kimg_per_trial,
        max_kimg=args.max_kimg,
        min_kimg=args.min_kimg,
        factor=args.factor,
        search=search_from_args(args),
        objective=args.objective,
        extractor=args.extractor,
        objective_images=args.objective_images,
        classifier_epochs=args.classifier_epochs,
        inception_weights=args.inception_weights,
        seed=args.seed,
        tuner_options=_tuner_options(args),
        max_consecutive_failed_trials=args.max_consecutive_failed_trials,
    )
    if args.dry_run:
        print(json.dumps(plan_study(args.model, args.data, args.out, **options).describe(), indent=2, default=str))
        return 0
    result = tune(
        args.model,
        args.data,
        args.out,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        overwrite=args.overwrite,
        progress=not args.quiet,
        **options,
    )
    if args.quiet:
        print("\n".join(result.summary()))
    return 0
