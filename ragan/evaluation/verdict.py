"""The report's words: the headline summary lines, the plain-language verdict of the classifier study and
the headline numbers logged to MLflow, all read from ``report.json``'s content.

Example:
    >>> plain_verdict({"study": None})["headline"]
    'No verdict on usefulness: the classifier study was not run.'
"""

from __future__ import annotations

__all__ = ["headline_metrics", "learning_sentences", "plain_verdict", "summary_lines"]

SMOKE_TEST = (
    "Smoke test (--quick: one seed, 3 epochs, at most 1000 images per set): these numbers show that the "
    "pipeline runs; they are not a verdict. Run without --quick for one."
)


def headline_metrics(data: dict) -> dict:
    metrics = {}
    for row in data["quality"]["rows"]:
        if row["reference"]:
            continue
        kind = "domain" if row["extractor"].startswith("ragan_domain") else "inception"
        metrics[f"eval.{row['metric'].lower()}.{kind}"] = row["value"]
    memorisation = data.get("memorisation")
    if memorisation:
        metrics["eval.memorisation.fraction_flagged"] = memorisation["fraction_flagged"]
    diversity = data.get("diversity") or {}
    if diversity.get("synthetic_ms_ssim") is not None:
        metrics["eval.diversity.synthetic_ms_ssim"] = diversity["synthetic_ms_ssim"]
    for row in (data.get("similarity") or {}).get("rows", []):
        if row["synthetic"]["mean"] is not None:
            metrics[f"eval.nearest.{row['metric'].lower()}"] = row["synthetic"]["mean"]
    for attack in (data.get("privacy") or {}).get("attacks", []):
        metrics[f"eval.privacy.{attack['key']}.auc"] = attack["auc"]
    study = data.get("study")
    if study:
        for arm in study["arms"]:
            for metric in ("auc", "accuracy"):
                if metric in arm["summary"]:
                    metrics[f"eval.study.{arm['name']}.{metric}"] = arm["summary"][metric]["mean"]
    return metrics


def summary_lines(data: dict) -> list[str]:
    lines = [SMOKE_TEST] if (data.get("settings") or {}).get("quick") else []
    lines += (data.get("privacy") or {}).get("sentences", [])
    rows = data["quality"]["rows"]
    floors = {(row["extractor"], row["metric"]): row for row in data["quality"].get("floors", [])}
    for extractor in dict.fromkeys(row["extractor"] for row in rows):
        values = {(r["metric"], r["reference"]): r for r in rows if r["extractor"] == extractor}
        fid, ref = values.get(("FID", False)), values.get(("FID", True))
        precision, recall = values.get(("precision", False)), values.get(("recall", False))
        if fid:
            text = f"FID {fid['value']:.4g}"
            if ref:
                text += f" (held-out real images: {ref['value']:.4g})"
            if precision and recall:
                text += f", precision {precision['value']:.3f}, recall {recall['value']:.3f}"
            lines.append(f"{text} [{extractor}; {fid['resize']}]")
            floor = [floors[(extractor, m)] for m in ("FID", "KID", "precision", "recall") if (extractor, m) in floors]
            if floor:
                sizes = f"{floor[0]['num_reference']} vs {floor[0]['num_compared']} images"
                lines.append(
                    f"  at equal sizes ({sizes}): "
                    + "; ".join(
                        f"{row['metric']} synthetic vs real: {row['synthetic']:.4g}; real vs real: {row['real']:.4g}"
                        for row in floor
                    )
                )
    diversity = data.get("diversity")
    if diversity and diversity.get("synthetic_ms_ssim") is not None:
        lines.append(
            f"Diversity: mean pairwise MS-SSIM within synthetic: {diversity['synthetic_ms_ssim']:.3f}; within real: "
            f"{diversity['real_ms_ssim']:.3f} (higher = more alike)"
        )
    memorisation = data.get("memorisation")
    if memorisation:
        lines.append(
            f"Memorisation: {memorisation['num_flagged']} of {memorisation['num_synthetic']} synthetic images "
            f"({100 * memorisation['fraction_flagged']:.1f}%) flagged as near-copies of training images"
        )
    study = data.get("study")
    if study:
        arms = {arm["name"]: arm for arm in study["arms"]}

        def auc(name):
            summary = arms[name]["summary"].get("auc")
            return f"{summary['mean']:.3f} ± {summary['std']:.3f}" if summary else "n/a"

        if "real" in arms:
            lines.append(f"Classifier AUC on held-out real test images: real only {auc('real')}")
        lines += [f"  {sentence}" for sentence in learning_sentences(study)]
        for comparison in study["comparisons"]["auc"]:
            if "verdict_line" in comparison:
                lines.append(f"  {comparison['verdict_line']}")
                continue
            n = len(comparison["seeds"])
            lines.append(
                f"  {comparison['arm']}: AUC {auc(comparison['arm'])}, {comparison['mean_difference']:+.3f} "
                f"± {comparison['std_difference']:.3f} vs {comparison['baseline']} (better in {comparison['wins']} "
                f"of {n} seed(s))"
            )
    return lines


_PLAIN = {
    "helps": "Yes: adding the synthetic images helped the classifier",
    "hurts": "No: adding the synthetic images made the classifier worse",
    "no evidence either way": "Not shown: the synthetic images did not clearly beat every alternative",
    "no verdict": "No verdict: a classifier it is compared with did not learn",
}
_AGAINST = {"helps": "better than", "hurts": "worse than", "no evidence either way": "no clear difference from"}
_ARM_LABELS = {"real": "real-only", "real_aug": "real + standard augmentation", "synthetic_only": "synthetic-only"}


def learning_sentences(study: dict) -> list[str]:
    """One sentence per arm whose classifier did not learn, and one on the likely causes.

    Example:
        >>> arm = {"name": "real", "learning": {"learned": False, "reasons": ["its test AUC 0.466 (...) is not above "
        ...        "chance (0.5)"]}, "runs": [{"epochs_trained": 3}]}
        >>> study = {"arms": [arm], "settings": {"epochs": 3}, "data": {"train": {"num_examples": 400},
        ...          "test": {"num_examples": 100}}}
        >>> print("\\n".join(learning_sentences(study)))
        The real-only classifier did not learn: its test AUC 0.466 (...) is not above chance (0.5); ...
        Likely causes: too few epochs (its runs stopped at the limit of 3; raise --epochs, default 20)...
    """
    failed = [arm for arm in study["arms"] if arm.get("learning") and not arm["learning"]["learned"]]
    if not failed:
        return []
    sentences = []
    for arm in failed:
        label = _ARM_LABELS.get(arm["name"], arm["name"])
        consequence = (
            "it is never said to help"
            if arm.get("kind") in ("real+synthetic", "synthetic_only")
            else "a comparison against it is not evidence, so none gets a helps/hurts verdict"
        )
        sentences.append(
            f"The {label} classifier did not learn: {' and '.join(arm['learning']['reasons'])}; {consequence}."
        )
    limit = study["settings"]["epochs"]
    at_limit = any(run.get("epochs_trained", 0) >= limit for arm in failed for run in arm["runs"])
    epochs = (
        f"too few epochs (its runs stopped at the limit of {limit}; raise --epochs, default 20)"
        if at_limit
        else f"training stopped early (before the limit of {limit} epochs) without improving on the validation split"
    )
    sentences.append(
        f"Likely causes: {epochs}, or too few images ({study['data']['train']['num_examples']} real training and "
        f"{study['data']['test']['num_examples']} test images)."
    )
    return sentences


def plain_verdict(data: dict) -> dict:
    """The answer for a clinician: one headline and a few sentences, from the study's verdicts.

    The headline comes from the real + synthetic arms (adding synthetic images): "helps" when one
    of them beats every baseline, "hurts" when all of them are worse than real-only training,
    otherwise not shown. A synthetic-only arm gets its own sentence.
    """
    study = data.get("study")
    if not study or not study.get("verdicts"):
        return {
            "verdict": None,
            "headline": "No verdict on usefulness: the classifier study was not run.",
            "sentences": [
                "Run the report with the classifier study to learn whether the synthetic images help "
                "a classifier on real patients' images."
            ],
        }
    names = study["data"]["class_names"]
    test = study["data"]["test"]["num_examples"]
    arms = {arm["name"]: arm for arm in study["arms"]}
    verdicts = study["verdicts"]
    adding = [v for v in verdicts if v["kind"] == "real+synthetic"] or verdicts
    kinds = [v["verdict"] for v in adding]
    if "helps" in kinds:
        overall = "helps"
    elif all(k == "hurts" for k in kinds):
        overall = "hurts"
    elif "no verdict" in kinds:
        overall = "no verdict"
    else:
        overall = "no evidence either way"
    task = f"telling {names[1]} from {names[0]}" if len(names) == 2 else f"telling {len(names)} classes apart"
    quick = bool((data.get("settings") or {}).get("quick"))
    sentences = [SMOKE_TEST] if quick else []
    sentences += learning_sentences(study)
    sentences += [
        f"Question: does adding synthetic images to the real training images make a classifier better at "
        f"{task} on {test} held-out real images it never saw? Measured by AUC (how well it ranks cases: "
        "0.5 = chance, 1 = perfect); the 95 % intervals allow for which test images and which training runs "
        "happened to be drawn."
    ]
    labels = {"real": "real images only", "real_aug": "real images with standard augmentation"}
    underpowered = []
    for entry in verdicts:
        arm = arms[entry["arm"]]
        if arm["kind"] == "synthetic_only":
            title = "Synthetic images only"
        elif arm["composition"]["synthetic"]:
            title = (
                f"Real + synthetic images ({entry['arm']}: {arm['composition']['synthetic']} synthetic added to "
                f"{arm['composition']['real']} real)"
            )
        else:
            title = entry["arm"]
        parts = []
        for comparison in entry["comparisons"]:
            label = labels.get(
                comparison["baseline"],
                "the same number of repeated real images"
                if comparison["baseline"].startswith("count_matched")
                else comparison["baseline"],
            )
            figures = (
                f"{comparison['mean_difference']:+.3f} AUC, "
                f"95 % interval {comparison['ci_low']:+.3f} to {comparison['ci_high']:+.3f}"
            )
            if comparison["verdict"] == "no verdict":
                parts.append(f"no verdict against {label}, which did not learn ({figures}, not evidence)")
            else:
                parts.append(f"{_AGAINST[comparison['verdict']]} {label} ({figures})")
            if comparison["underpowered"] and comparison["verdict"] == "no evidence either way":
                underpowered.append(comparison["detectable_difference"])
        sentences.append(f"{title}: " + "; ".join(parts) + ".")
    if underpowered:
        effect = verdicts[0]["comparisons"][0]["effect_size"]
        low, high = min(underpowered), max(underpowered)
        reach = f"{low:.3f}" if round(low, 3) == round(high, 3) else f"{low:.3f} to {high:.3f}"
        sentences.append(
            f"The test split ({test} images) is too small to detect an AUC difference of {effect:g}: it "
            f'detects about {reach} or more, so "no clear difference" does not mean "no effect". '
            "A larger test set would be needed to settle it."
        )
    if len(study["settings"]["seeds"]) == 1:
        sentences.append(
            "Only one training seed was run: the intervals cover the choice of test images, not the "
            "run-to-run variation of training."
        )
    sentences.append("This is a research measurement on one dataset, not evidence of clinical benefit.")
    headline = f"Smoke test (--quick), not a verdict. {_PLAIN[overall]}" if quick else _PLAIN[overall]
    return {"verdict": overall, "headline": headline, "sentences": sentences, "smoke_test": quick}
