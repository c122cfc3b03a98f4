"""``ragan hparams [MODEL]``: the declared hyperparameters of a model as a table."""

from __future__ import annotations


def register(subparsers):
    parser = subparsers.add_parser(
        "hparams",
        help="List the GANs, or show one GAN's hyperparameters (meaning, default, range).",
        description="Without MODEL, list the registered GANs; with MODEL, print its hyperparameters "
        "and the training options as tables (name, type, default, allowed range, tuning range, meaning).",
    )
    parser.add_argument("model", nargs="?", help="a registered GAN name, e.g. dcgan")
    parser.add_argument("--json", action="store_true", help="print the defaults as JSON instead")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    import json

    from ragan.registry import get_gan, list_gans
    from ragan.training.config import TrainConfig

    if not args.model:
        for name in list_gans():
            cls = get_gan(name)
            doc = (cls.__doc__ or "").strip().splitlines()
            print(f"{name:12s} {doc[0] if doc else ''}")
        return 0
    cls = get_gan(args.model)
    if args.json:
        print(json.dumps({"model": cls.config_class().to_dict(), "training": TrainConfig().to_dict()}, indent=2))
        return 0
    print(f"{cls.gan_name} hyperparameters ({cls.config_class.__name__}):\n")
    print(cls.config_class.table())
    print("\nTraining options (TrainConfig):\n")
    print(TrainConfig.table())
    return 0
