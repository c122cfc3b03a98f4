"""``report.html``: the evaluation report as one self-contained page.

The page is the Jinja2 template ``templates/report.html`` (autoescaped: every value from the data is
escaped by the template engine, not by hand); the classifier study's plots are drawn with matplotlib
and embedded as inline SVG, the sample grids and memorisation pairs as PNG data URIs, and the CSS
sits in the page, so the file opens anywhere without a network. Images larger than
:data:`THUMBNAIL_SIDE` are shown as area-downscaled thumbnails, each a link to its full-size PNG in
``images/`` beside the page (:class:`ImageFiles`), so the report folder still copies as one piece.
Jinja2 and matplotlib are imported only when a report is rendered, so ``import ragan`` stays fast.

Example:
    >>> fmt(0.123456), fmt(12345.0), fmt(None), fmt(3)
    ('0.123', '1.23e+04', 'n/a', '3')
    >>> strip(np.zeros((3, 4, 4, 1), np.uint8), scale=2).shape
    (8, 28, 1)
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np

__all__ = ["ImageFiles", "arm_plot_svg", "fmt", "grid_rows", "png_data_uri", "render_html", "strip", "thumbnail"]

TEMPLATES = Path(__file__).parent / "templates"
GRID_COLUMNS = 8
# Images larger than this are shown as thumbnails of this side, linked to their full-size file.
THUMBNAIL_SIDE = 96
IMAGES_DIR = "images"
# Quantiles (in %) of the nearest-training distances shown in the memorisation table (0 = minimum).
DISTANCE_QUANTILES = (0, 1, 5, 25, 50)
KIND_COLOURS = {
    "real": "#4a5568",
    "real_aug": "#718096",
    "real+synthetic": "#2f6fde",
    "count_matched": "#dd8a1f",
    "synthetic_only": "#7b3fbf",
}
# Verdict -> CSS class of the verdict box and of the comparison table's verdict cells.
VERDICT_CSS = {"helps": "helps", "hurts": "hurts", "no evidence either way": "none", "no verdict": "none"}
# Privacy finding -> CSS class of the privacy box (a leak is the bad case, chance the good one).
PRIVACY_CSS = {"chance": "helps", "above chance": "none", "leak": "hurts"}


# ---------------------------------------------------------------------------------------------
# Images


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Display pixels: uint16 -> 8 bit; floats in [-1, 1] -> 0..255.

    Example:
        >>> to_uint8(np.array([-1.0, 0.0, 1.0])).tolist()
        [0, 128, 255]
    """
    if images.dtype == np.uint8:
        return images
    if images.dtype == np.uint16:
        return np.rint(images / 257.0).astype(np.uint8)
    return np.clip(np.rint((images.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def png_data_uri(image: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI of one image (HxW or HxWxC).

    Example:
        >>> png_data_uri(np.zeros((2, 2, 1), np.uint8))[:22]
        'data:image/png;base64,'
    """
    from PIL import Image

    image = to_uint8(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def display_scale(image_size: int) -> int:
    """Integer upscaling so small images (28 px) are visible; nearest neighbour keeps pixels honest."""
    return max(1, 64 // image_size)


def strip(images: np.ndarray, scale: int, pad: int = 2) -> np.ndarray:
    """One row of images, ``pad`` px apart (white), each upscaled by ``scale``."""
    images = to_uint8(images)
    count, height, width, channels = images.shape
    height, width = height * scale, width * scale
    row = np.full((height, count * width + (count - 1) * pad, channels), 255, np.uint8)
    for i, image in enumerate(images):
        big = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
        row[:, i * (width + pad) : i * (width + pad) + width] = big
    return row


def thumbnail(image: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """An image for the page: area-downscaled to ``side`` when larger, else upscaled by :func:`display_scale`.

    Example:
        >>> thumbnail(np.zeros((512, 512, 1), np.uint16)).shape, thumbnail(np.zeros((28, 28, 1), np.uint8)).shape
        ((96, 96, 1), (56, 56, 1))
    """
    from PIL import Image

    image = to_uint8(image)
    height = image.shape[0]
    if height <= side:
        return strip(image[None], display_scale(height))
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    small = np.asarray(picture.resize((side, round(side * image.shape[1] / height)), Image.Resampling.BOX))
    return small[..., None] if small.ndim == 2 else small


class ImageFiles:
    """Pictures of the report: a thumbnail data URI for the page, and the full-size PNG beside it when larger.

    Args:
        folder: The report folder (full-size files go to its ``images/``); None writes no files.
        side: :data:`THUMBNAIL_SIDE`.

    Example:
        >>> import tempfile
        >>> files = ImageFiles(Path(tempfile.mkdtemp()))
        >>> entry = files.entry(np.zeros((256, 256, 1), np.uint16), "synthetic-3")
        >>> entry["href"], entry["uri"][:22]
        ('images/synthetic-3.png', 'data:image/png;base64,')
    """

    def __init__(self, folder: Path | None, side: int = THUMBNAIL_SIDE):
        self.folder = None if folder is None else Path(folder)
        self.side = side

    def entry(self, image: np.ndarray, name: str) -> dict:
        """``{"uri": thumbnail data URI, "href": "images/<name>.png" or None, "size": side}`` of one image."""
        href = None
        if self.folder is not None and image.shape[0] > self.side:
            href = f"{IMAGES_DIR}/{name}.png"
            path = self.folder / href
            path.parent.mkdir(exist_ok=True)
            _write_png(image, path)
        return {"uri": png_data_uri(thumbnail(image, self.side)), "href": href, "size": int(image.shape[0])}


def _write_png(image: np.ndarray, path: Path) -> None:
    """The stored pixels as PNG: 16-bit grey stays 16-bit; 16-bit RGB becomes 8-bit (Pillow writes no 16-bit RGB)."""
    from PIL import Image

    if image.dtype == np.uint16 and image.shape[-1] == 1:
        Image.fromarray(np.ascontiguousarray(image[..., 0])).save(path, format="PNG")
        return
    image = to_uint8(image)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path, format="PNG")


def grid_rows(labels, class_names, rng, load, *, count=None, files=None, prefix="", columns=GRID_COLUMNS) -> list[dict]:
    """Per class (or one row for unlabelled images): ``columns`` random images, as :meth:`ImageFiles.entry`.

    Args:
        labels: Class index of every image, or None (unlabelled: one row).
        class_names: The class names.
        rng: The random generator choosing the images.
        load: ``load(indices) -> images``: the chosen images (at full resolution).
        count: The number of images when ``labels`` is None.
        files: :class:`ImageFiles` (default: thumbnails only, no files).
        prefix: File name prefix, e.g. ``"synthetic"``: files are ``<prefix>-<index>.png``.

    Example:
        >>> images = np.zeros((5, 8, 8, 1), np.uint8)
        >>> rows = grid_rows(np.array([0, 0, 1, 1, 1]), ["a", "b"], np.random.default_rng(0), images.__getitem__)
        >>> [(row["label"], row["count"], len(row["images"])) for row in rows]
        [('a', 2, 2), ('b', 3, 3)]
    """
    files = files or ImageFiles(None)
    rows = []
    if labels is None:
        groups = [("all", np.arange(count))]
    else:
        groups = [(name, np.flatnonzero(labels == c)) for c, name in enumerate(class_names)]
    for name, indices in groups:
        if indices.size == 0:
            continue
        chosen = np.sort(rng.choice(indices, size=min(columns, indices.size), replace=False))
        images = load(chosen)
        entries = [files.entry(image, f"{prefix}-{int(index)}") for index, image in zip(chosen, images)]
        rows.append({"label": name, "count": int(indices.size), "images": entries})
    return rows


def gallery_pair(pair: dict, files: ImageFiles | None = None) -> dict:
    """A gallery pair: the audit's entry plus both pictures (from ``synthetic_pixels`` and ``train_pixels``).

    Example:
        >>> pair = {"synthetic_index": 0, "synthetic_record": 4, "train_index": 2,
        ...         "synthetic_pixels": np.zeros((8, 8, 1), np.uint8), "train_pixels": np.zeros((8, 8, 1), np.uint8)}
        >>> sorted(key for key in gallery_pair(pair) if key.endswith("uri"))
        ['synthetic_uri', 'train_uri']
    """
    files = files or ImageFiles(None)
    entry = {key: value for key, value in pair.items() if not key.endswith("_pixels")}
    record = pair.get("synthetic_record", pair["synthetic_index"])
    synthetic = files.entry(pair["synthetic_pixels"], f"synthetic-{record}")
    train = files.entry(pair["train_pixels"], f"real-train-{pair['train_index']}")
    return dict(
        entry,
        synthetic_uri=synthetic["uri"],
        synthetic_href=synthetic["href"],
        train_uri=train["uri"],
        train_href=train["href"],
    )


# ---------------------------------------------------------------------------------------------
# Numbers and tables


def fmt(value, digits: int = 3) -> str:
    """A number for the tables: ``digits`` decimals, or significant digits when very large or small."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return str(value)


def distance_rows(memorisation: dict) -> list[dict]:
    """Nearest-training-image distances of the synthetic and held-out real images, per search, as quantiles.

    Copies show up as a synthetic low tail far below the held-out real one.

    Example:
        >>> search = {"nearest_distance": [0.1, 0.2, None], "baseline": [], "threshold": 0.05}
        >>> [(row["images"], row["n"], row["quantiles"][0]) for row in distance_rows({"searches": {"pixel": search}})]
        [('synthetic → train', 2, '0.1000'), ('held-out real → train', 0, 'n/a')]
    """
    rows = []
    for name, search in memorisation["searches"].items():
        for label, values in (
            ("synthetic → train", search.get("nearest_distance")),
            ("held-out real → train", search.get("baseline")),
        ):
            finite = np.asarray([v for v in values or [] if v is not None], dtype=np.float64)
            quantiles = [fmt(float(np.percentile(finite, q)), 4) if finite.size else "n/a" for q in DISTANCE_QUANTILES]
            rows.append(
                {
                    "search": name,
                    "images": label,
                    "n": int(finite.size),
                    "quantiles": quantiles,
                    "threshold": fmt(search.get("threshold"), 4),
                }
            )
    return rows


def study_metrics(study: dict) -> list[str]:
    """The study's metrics that at least one arm reports, in the table's order."""
    return [
        m
        for m in ("auc", "accuracy", "sensitivity", "specificity")
        if any(m in arm["summary"] for arm in study["arms"])
    ]


# ---------------------------------------------------------------------------------------------
# Plots


def _svg(figure) -> str:
    """A matplotlib figure as an ``<svg>`` element (no XML prolog), text kept as text."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _axis_range(arms: list, seeds: list, metric: str) -> tuple[float, float]:
    """A y range holding every mean ± std and seed value, with a margin, inside [0, 1]."""
    lows = [min([a["summary"][metric]["mean"] - a["summary"][metric]["std"], *s]) for a, s in zip(arms, seeds)]
    highs = [max([a["summary"][metric]["mean"] + a["summary"][metric]["std"], *s]) for a, s in zip(arms, seeds)]
    low, high = min(lows), max(highs)
    span = max(high - low, 0.02)
    low, high = max(0.0, low - 0.15 * span), min(1.0, high + 0.15 * span)
    if high - low < 0.02:
        low, high = max(0.0, high - 0.02), min(1.0, low + 0.02)
    return low, high


def arm_plot_svg(study: dict, metric: str, *, title: str) -> str:
    """Mean ± std (error bars) and per-seed values of ``metric`` for every arm, as inline SVG.

    Each arm's error bar is an SVG group with the id ``error-bar-{metric}-{index}``; the dashed line is
    the real-only mean; the colours are the arm kinds' (:data:`KIND_COLOURS`, the page's legend). Empty when
    no arm reports ``metric``.
    """
    arms = [arm for arm in study["arms"] if metric in arm["summary"]]
    if not arms:
        return ""
    import matplotlib
    from matplotlib.figure import Figure

    seeds = [[run["metrics"][metric] for run in arm["runs"] if run["metrics"].get(metric) is not None] for arm in arms]
    low, high = _axis_range(arms, seeds, metric)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"ragan-{metric}", "font.size": 9}):
        figure = Figure(figsize=(max(3.4, 0.7 * len(arms) + 1.0), 3.4))
        axes = figure.add_subplot()
        reference = next((a for a in arms if a["name"] == "real"), None)
        if reference is not None:
            axes.axhline(reference["summary"][metric]["mean"], color=KIND_COLOURS["real"], ls="--", lw=1, zorder=1)
        for index, (arm, values) in enumerate(zip(arms, seeds)):
            colour = KIND_COLOURS.get(arm["kind"], "#333333")
            mean, std = arm["summary"][metric]["mean"], arm["summary"][metric]["std"]
            bars = axes.errorbar([index], [mean], yerr=[std], fmt="o", color=colour, ms=6, capsize=5, lw=2, zorder=3)
            bars.lines[2][0].set_gid(f"error-bar-{metric}-{index}")
            offsets = (np.arange(len(values)) - (len(values) - 1) / 2) * 0.06
            axes.scatter(index + 0.2 + offsets, values, s=9, color=colour, alpha=0.5, zorder=2, linewidths=0)
        axes.set_xticks(range(len(arms)), [arm["name"] for arm in arms], rotation=35, ha="right")
        axes.set_xlim(-0.6, len(arms) - 0.4)
        axes.set_ylim(low, high)
        axes.set_title(title, loc="left", fontsize=10, fontweight="bold")
        axes.grid(axis="y", color="#e3e6ea", lw=0.8)
        axes.set_axisbelow(True)
        axes.spines[["top", "right"]].set_visible(False)
        return _svg(figure)


# ---------------------------------------------------------------------------------------------
# The page


def render_html(data: dict, visuals: dict) -> str:
    """The report page from ``report.json``'s content and the visuals (grids, gallery, plots).

    ``visuals``: ``{"grids": {"real": rows, "synthetic": rows}, "gallery": pairs, "plots": {metric: svg}}``.
    """
    import jinja2
    from markupsafe import Markup

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["fmt"] = fmt
    environment.filters["signed"] = lambda value, digits=3: f"{value:+.{digits}f}"
    # The plots are SVG that matplotlib wrote from numbers, not user text: inserted as markup.
    plots = {metric: Markup(svg) for metric, svg in visuals.get("plots", {}).items() if svg}
    study = data.get("study")
    memorisation = data.get("memorisation")
    return environment.get_template("report.html").render(
        data=data,
        title=Path(data["synthetic"]["path"]).name,
        verdict_css=VERDICT_CSS,
        privacy_css=PRIVACY_CSS,
        grids=visuals["grids"],
        gallery=visuals["gallery"],
        plots=plots,
        generator_json=json.dumps(data["synthetic"]["generator"]) if data["synthetic"].get("generator") else None,
        settings_json=json.dumps(data["settings"]),
        data_sets=[(f"real {name}", data["real"][name]) for name in ("train", "val", "test")]
        + [("synthetic", data["synthetic"])],
        study_metrics=study_metrics(study) if study else [],
        distance_rows=distance_rows(memorisation) if memorisation else [],
        plot_legend=[
            (kind, KIND_COLOURS.get(kind, "#333333")) for kind in dict.fromkeys(a["kind"] for a in study["arms"])
        ]
        if study
        else [],
        distance_heads=["min" if q == 0 else f"{q}%" for q in DISTANCE_QUANTILES],
    )
