"""The report's "Privacy" section: can an attacker tell the generator's training patients from others?

:func:`privacy_audit` runs the attacks of :mod:`ragan.evaluation.privacy` on arrays the report has
already read: every real training image (members) against every held-out real test image
(non-members),

* **black-box**, once per space the report measures in (the domain classifier's features and the
  pixels): the distance from each candidate to its nearest synthetic image;
* **white-box**, when the GAN is given (:func:`discriminator_scores_of_run`): the discriminator's
  realness logit, from the saved model and, when the run's newest checkpoint is a later step than
  the saved model, from that checkpoint's discriminator too.

An AUC above 0.5 is not yet a leak. Two floors, both with real images the GAN never saw from the
training images' own pool (the validation split), say what the attack finds without one:

* *unseen images in the members' place*: a held-out split drawn apart from the training images
  (PneumoniaMNIST's test split comes from another collection than its training and validation
  splits) differs from them whatever the GAN did; on the main job the discriminator scored unseen
  validation images above the test images as much as its own training images (AUC 0.60 against
  0.56);
* *unseen images in the synthetic set's place* (black-box): the domain classifier was trained on
  the training images, so its features may set them apart by themselves; the pixels cannot.

Per class, the same attacks on that class's members and non-members. The first screen of the
report gets one plain sentence per attacker (:func:`~ragan.evaluation.privacy.privacy_sentence`)
and a flag when an interval lies wholly above :data:`~ragan.evaluation.privacy.LEAK_AUC`.

Example (a planted leak: the "synthetic" images are training images plus noise):
    >>> rng = np.random.default_rng(0)
    >>> train, test = rng.normal(size=(60, 16)), rng.normal(size=(60, 16))
    >>> spaces = {"pixels": {"train": train, "held_out": test, "synthetic": train + 0.05 * rng.normal(size=(60, 16))}}
    >>> audit = privacy_audit(spaces, np.zeros(60, int), np.zeros(60, int), ["normal"], num_resamples=100)
    >>> audit["finding"], audit["flag"], audit["sentences"][0][:43]
    ('leak', True, 'An attacker with the synthetic set can tell')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ragan.errors import RaganError
from ragan.evaluation.privacy import (
    LEAK_AUC,
    attack_finding,
    distance_attack,
    membership_attack,
    nearest_distances,
    privacy_sentence,
)
from ragan.evaluation.statistics import BOOTSTRAP_RESAMPLES

__all__ = ["discriminator_scores", "discriminator_scores_of_run", "privacy_audit"]

# Keys and names of the spaces the black-box attack measures in.
SPACE_KEYS = {"domain features": "feature", "pixels": "pixel"}
# The minibatch-standard-deviation layer of StyleGAN2's D scores each image together with its group;
# padding every call to a multiple of the largest group of its presets keeps every group whole.
_D_GROUP_MULTIPLE = 32
_FINDING_ORDER = {"chance": 0, "above chance": 1, "leak": 2}


def _public(attack: dict) -> dict:
    """An attack without its per-image arrays (report.json keeps the summaries)."""
    return {key: value for key, value in attack.items() if key != "distances"}


def _interval(attack: dict) -> dict:
    return {key: attack[key] for key in ("auc", "ci_low", "ci_high", "num_members", "num_nonmembers")}


def discriminator_scores(gan, images: np.ndarray, labels=None, *, seed: int = 0) -> np.ndarray:
    """The discriminator's realness logit of every image (float images in [-1, 1]).

    The images are scored in a random order (fixed by ``seed``) so that a discriminator that looks
    at a group of images at once (StyleGAN2's minibatch standard deviation) sees members and
    non-members mixed, never a batch of one kind.

    Args:
        gan: A :class:`ragan.models.GAN`.
        images: ``(N, H, W, C)`` floats in [-1, 1] at the GAN's size, or a set read at full resolution
            (:class:`~ragan.evaluation.full_resolution.UnitImages`, ``ConcatenatedImages``), scored
            a group at a time.
        labels: ``(N,)`` class indices in the GAN's class order (conditional discriminators).
        seed: Seed of the order.

    Returns:
        ``(N,)`` logits, higher = "more real".
    """
    count = len(images)
    order = np.random.default_rng(seed).permutation(count)
    padded = int(np.ceil(count / _D_GROUP_MULTIPLE) * _D_GROUP_MULTIPLE)
    order = np.concatenate([order, order[: padded - count]]) if padded > count else order
    labels = None if labels is None else np.asarray(labels)
    if hasattr(images, "full"):
        # Read at full resolution a group at a time: 1,000 images of 1024 px would be 4 GB as float32.
        scores = np.concatenate(
            [
                gan.discriminate(
                    images.full(rows), None if labels is None else labels[rows], batch_size=_D_GROUP_MULTIPLE
                )
                for rows in np.split(order, len(order) // _D_GROUP_MULTIPLE)
            ]
        )
    else:
        scores = gan.discriminate(images[order], None if labels is None else labels[order])
    result = np.empty(count, np.float64)
    result[order[:count]] = scores[:count]
    return result


def _restore_discriminator(gan, checkpoint: Path) -> None:
    """Give ``gan``'s discriminator the weights of a training checkpoint (positions as its variables)."""
    from ragan.training.checkpoint import CheckpointManager

    meta = CheckpointManager.verify(checkpoint)
    positions = {id(variable): index for index, variable in enumerate(gan.variables)}
    with np.load(checkpoint, allow_pickle=False) as data:
        for variable in gan.discriminator.weights:
            index = positions.get(id(variable))
            value = None if index is None or index >= len(meta["variables"]) else data[f"v{index:05d}"]
            if value is None or tuple(value.shape) != tuple(variable.shape):
                raise RaganError(f"checkpoint '{checkpoint}' does not match the saved model's discriminator.")
            variable.assign(value)


def discriminator_scores_of_run(
    generator_run,
    members,
    member_labels,
    nonmembers,
    nonmember_labels,
    class_names,
    seed=0,
    *,
    unseen=None,
    unseen_labels=None,
):
    """White-box inputs: the discriminator scores of members and non-members, from a training run.

    Args:
        generator_run: The run directory (or ``.keras`` file) given to ``ragan evaluate --run``.
        members, nonmembers: Float images in [-1, 1], or sets read at full resolution
            (:class:`~ragan.evaluation.full_resolution.UnitImages`).
        member_labels, nonmember_labels: Their class indices in ``class_names`` order.
        class_names: The real dataset's class names.
        seed: Seed of the scoring order.
        unseen, unseen_labels: Optional real images the GAN never saw from the training images'
            pool (the validation split), scored too for the floor.

    Returns:
        ``({key: {"name", "member_scores", "nonmember_scores"[, "unseen_scores"]}}, notes)``; keys
        ``discriminator`` and ``discriminator_checkpoint``. A run whose GAN cannot serve gives no
        scores and a note.
    """
    from ragan.generation import load_generator
    from ragan.training.checkpoint import CheckpointManager
    from ragan.training.run_files import CHECKPOINT_DIR

    notes = []
    try:
        gan = load_generator(generator_run)
    except RaganError as error:
        return {}, [f"white-box attack skipped: {error}"]
    shape = (gan.image_size, gan.image_size, gan.channels)
    given = tuple(members.full_shape if hasattr(members, "full") else members.shape[1:])
    if given != shape:
        return {}, [
            f"white-box attack skipped: the GAN's discriminator takes {'x'.join(map(str, shape))} images, the real "
            f"dataset holds {'x'.join(map(str, given))}"
        ]
    labels = None
    if gan.discriminator_takes_labels:
        gan_names = list(getattr(gan, "class_names", []) or [])
        missing = [name for name in class_names if name not in gan_names]
        if missing:
            return {}, [f"white-box attack skipped: the GAN knows no class {missing[0]!r} of the real dataset"]
        mapping = np.array([gan_names.index(name) for name in class_names])
        parts = [member_labels, nonmember_labels] + ([unseen_labels] if unseen is not None else [])
        labels = mapping[np.concatenate(parts).astype(np.int64)]
    image_sets = [members, nonmembers] + ([unseen] if unseen is not None else [])
    if hasattr(members, "full"):
        from ragan.evaluation.full_resolution import ConcatenatedImages

        images = ConcatenatedImages(image_sets)
    else:
        images = np.concatenate(image_sets).astype(np.float32)
    ends = np.cumsum([len(members), len(nonmembers)])
    meta = getattr(gan, "run_metadata", {}) or {}
    step = meta.get("step")
    found = {}

    def score(key, name):
        scores = discriminator_scores(gan, images, labels, seed=seed)
        found[key] = {
            "name": name,
            "member_scores": scores[: ends[0]],
            "nonmember_scores": scores[ends[0] : ends[1]],
        }
        if unseen is not None:
            found[key]["unseen_scores"] = scores[ends[1] :]

    score("discriminator", "discriminator of the saved model" + (f" (step {step})" if step is not None else ""))
    run_dir = Path(generator_run)
    latest = CheckpointManager(run_dir / CHECKPOINT_DIR).latest() if run_dir.is_dir() else None
    if latest is not None:
        checkpoint_step = CheckpointManager.read_meta(latest)["step"]
        if step is not None and checkpoint_step == step:
            notes.append(
                f"the run's last checkpoint ({latest.name}) is the saved model's step: its discriminator is the "
                "one attacked"
            )
        else:
            try:
                _restore_discriminator(gan, latest)
                score("discriminator_checkpoint", f"discriminator of the last checkpoint (step {checkpoint_step})")
            except RaganError as error:
                notes.append(f"last checkpoint's discriminator skipped: {error}")
    return found, notes


def _black_box(space: str, sets: dict, groups: dict, unseen_labels, num_resamples: int, seed: int) -> dict:
    attack = distance_attack(
        sets["train"], sets["held_out"], sets["synthetic"], **groups, num_resamples=num_resamples, seed=seed
    )
    attack.update(key=SPACE_KEYS.get(space, space), kind="black-box", name=f"nearest synthetic image ({space})")
    attack["space"] = space
    attack["num_synthetic"] = int(len(sets["synthetic"]))
    unseen = sets.get("unseen")
    if unseen is not None:
        attack["floors"] = {
            # No generator at all: unseen real images stand in for the synthetic set.
            "unseen_as_synthetic": _interval(
                distance_attack(
                    sets["train"], sets["held_out"], unseen, **groups, num_resamples=num_resamples, seed=seed
                )
            ),
            # No membership at all: unseen images of the training images' pool stand in for the members.
            "unseen_as_members": _interval(
                distance_attack(
                    None,
                    None,
                    None,
                    member_distances=nearest_distances(unseen, sets["synthetic"]),
                    nonmember_distances=attack["distances"][1],
                    member_groups=unseen_labels,
                    nonmember_groups=None if unseen_labels is None else groups["nonmember_groups"],
                    num_resamples=num_resamples,
                    seed=seed,
                )
            ),
        }
    return attack


def _per_class(attacks: list, member_labels, nonmember_labels, class_names, num_resamples, seed) -> list:
    rows = []
    for index, name in enumerate(class_names):
        members, nonmembers = member_labels == index, nonmember_labels == index
        row = {"class": name, "num_members": int(members.sum()), "num_nonmembers": int(nonmembers.sum())}
        if members.any() and nonmembers.any():
            row["attacks"] = {
                attack["key"]: _interval(
                    membership_attack(
                        attack["scores"][0][members],
                        attack["scores"][1][nonmembers],
                        num_resamples=num_resamples,
                        seed=seed,
                    )
                )
                for attack in attacks
            }
        rows.append(row)
    return rows


def _floor_sentences(attack: dict) -> str:
    """What the floors say about an attack above chance: part of it is the space, or the splits."""
    floors = attack.get("floors") or {}
    if attack["ci_low"] <= 0.5:
        return ""
    text = ""
    members = floors.get("unseen_as_members")
    if members is not None and members["ci_high"] >= attack["auc"]:
        text += (
            f" But images the GAN never saw from the training images' pool (the validation split) score AUC "
            f"{members['auc']:.2f} [{members['ci_low']:.2f}, {members['ci_high']:.2f}] in the members' place: the "
            "attack tells the splits apart, not who was trained on."
        )
    synthetic = floors.get("unseen_as_synthetic")
    if synthetic is not None and synthetic["ci_low"] > 0.5:
        text += (
            f" Real images the generator never saw, in the synthetic set's place, score AUC {synthetic['auc']:.2f} "
            f"[{synthetic['ci_low']:.2f}, {synthetic['ci_high']:.2f}] in the same space: part of it is the space, "
            "not the generator."
        )
    return text


def privacy_audit(
    spaces: dict,
    member_labels,
    nonmember_labels,
    class_names,
    *,
    unseen_labels=None,
    discriminators: dict | None = None,
    notes: list | None = None,
    num_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict:
    """The membership-inference audit as ``report.json``'s ``privacy`` section.

    Args:
        spaces: ``{space name: {"train", "held_out", "synthetic"[, "unseen"]}}`` arrays (images or
            features) of the members, the non-members, the synthetic set and, optionally, real
            images the generator never saw from the members' pool (the validation split), for the
            floors.
        member_labels, nonmember_labels: Class indices of the members and non-members.
        class_names: The class names (for the per-class table).
        unseen_labels: Class indices of the ``unseen`` images.
        discriminators: White-box scores from :func:`discriminator_scores_of_run`.
        notes: Remarks to carry into the section.
        num_resamples, seed: Of the bootstrap intervals.

    Returns:
        ``{"attacks": [...], "per_class": [...], "sentences": [...], "finding", "flag", "leak_auc",
        "notes"}``; each attack: ``key``, ``kind``, ``name``, ``auc``, ``ci_low``, ``ci_high``,
        ``tpr_at_fpr``, sizes, ``finding``, (black-box) distance summaries and, with unseen images,
        ``floors``: ``unseen_as_members`` (the same attack with the unseen images in the members'
        place: what a difference between the splits alone gives) and, black-box,
        ``unseen_as_synthetic`` (the unseen images in the synthetic set's place: what the space
        alone gives).
    """
    member_labels = np.asarray(member_labels).reshape(-1)
    nonmember_labels = np.asarray(nonmember_labels).reshape(-1)
    # Weighted to the members' class mix: a held-out split balanced differently must not pass for a leak.
    groups = {"member_groups": member_labels, "nonmember_groups": nonmember_labels}
    attacks = []
    for space, sets in spaces.items():
        attack = _black_box(space, sets, groups, unseen_labels, num_resamples, seed)
        members, nonmembers = attack.pop("distances")
        attack["scores"] = (-members, -nonmembers)
        attacks.append(attack)
    for key, found in (discriminators or {}).items():
        attack = membership_attack(
            found["member_scores"], found["nonmember_scores"], **groups, num_resamples=num_resamples, seed=seed
        )
        attack.update(key=key, kind="white-box", name=found["name"])
        if found.get("unseen_scores") is not None:
            floor = membership_attack(
                found["unseen_scores"],
                found["nonmember_scores"],
                member_groups=unseen_labels,
                nonmember_groups=None if unseen_labels is None else nonmember_labels,
                num_resamples=num_resamples,
                seed=seed,
            )
            attack["floors"] = {"unseen_as_members": _interval(floor)}
        attack["scores"] = (np.asarray(found["member_scores"]), np.asarray(found["nonmember_scores"]))
        attacks.append(attack)
    per_class = _per_class(attacks, member_labels, nonmember_labels, class_names, num_resamples, seed)
    for attack in attacks:
        del attack["scores"]
        attack["finding"] = attack_finding(attack)
    sentences = []
    black = [a for a in attacks if a["kind"] == "black-box"]
    white = [a for a in attacks if a["kind"] == "white-box"]
    if black:
        strongest = max(black, key=lambda a: (a["ci_low"], a["auc"]))
        where = (
            f"distance to the nearest synthetic image in the {strongest['space']}, the stronger attack; "
            f"{strongest['num_members']} training vs {strongest['num_nonmembers']} held-out images"
        )
        sentences.append(
            privacy_sentence(strongest, "an attacker with the synthetic set", where) + _floor_sentences(strongest)
        )
    if white:
        strongest = max(white, key=lambda a: (a["ci_low"], a["auc"]))
        sentences.append(
            privacy_sentence(strongest, "an attacker with the GAN's discriminator", strongest["name"])
            + _floor_sentences(strongest)
        )
    finding = max((a["finding"] for a in attacks), key=_FINDING_ORDER.get, default="chance")
    return {
        "members": "every real training image",
        "nonmembers": "every held-out real test image",
        "class_balanced": "the held-out images are weighted to the training images' class mix, so that an attack "
        "cannot find members by their class alone (the per-class rows need no weights)",
        "attacks": [_public(attack) for attack in attacks],
        "per_class": per_class,
        "sentences": sentences,
        "finding": finding,
        "flag": finding == "leak",
        "leak_auc": LEAK_AUC,
        "notes": list(notes or []),
    }
