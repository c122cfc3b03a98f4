"""``ragan import-weights FILE.pkl --out DIR``: an official StyleGAN2-ADA network as a ragan run."""

from __future__ import annotations


def register(subparsers):
    parser = subparsers.add_parser(
        "import-weights",
        help="Import an official StyleGAN2-ADA network pickle (NVIDIA's FFHQ, MetFaces, BreCaHAD... or your own).",
        description="Read an official StyleGAN2-ADA .pkl (G, D, G_ema, w_avg, augmentation p) without running "
        "any code from it and without PyTorch, and write a ragan run folder that 'ragan generate DIR', "
        "'ragan evaluate --run DIR' and 'ragan train stylegan2 --init-from DIR' use. Pickles run code "
        "when opened with Python's pickle: open them only this way unless you trust their source.",
    )
    parser.add_argument("pickle", metavar="FILE.pkl", help="the network pickle")
    parser.add_argument("--out", required=True, help="run folder to write (written aside, then renamed)")
    parser.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="image channels of the imported model (default: the network's); 1 from an RGB network "
        "averages its colour outputs, for greyscale medical images",
    )
    parser.add_argument(
        "--class-names", default=None, help="conditional networks: the classes' names, comma-separated, in label order"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    from ragan._network_pickle import network_config, read_network_pickle
    from ragan._untrusted import check_class_names

    names = [n.strip() for n in args.class_names.split(",") if n.strip()] if args.class_names else None
    check_class_names(names or [], "--class-names")
    # Read and check the file before TensorFlow loads: a refused file costs a fraction of a second.
    data = read_network_pickle(args.pickle)
    network_config(args.pickle, data)
    from ragan.models.stylegan2.pickle_import import import_network_pickle, write_imported_run

    gan, info = import_network_pickle(args.pickle, channels=args.channels, data=data)
    out = write_imported_run(gan, info, args.out, class_names=names, overwrite=args.overwrite)
    classes = f", {gan.num_classes} classes" if gan.num_classes else ""
    print(
        f"imported {info['file']} ({gan.image_size} px, {gan.channels} channel{'s' if gan.channels > 1 else ''}"
        f"{classes}; {', '.join(info['networks'])}; augment p {info['augment_p']:.3f}) to {out}"
    )
    return 0
