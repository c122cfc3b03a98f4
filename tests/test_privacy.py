"""Membership-inference maths, the real-vs-real floors and the precision/recall guard (pure NumPy, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from ragan.errors import RaganError
from ragan.evaluation.floors import feature_floors, floor_ratio, floor_sizes
from ragan.evaluation.metrics import precision_recall_from_features
from ragan.evaluation.privacy import (
    LEAK_AUC,
    attack_finding,
    distance_attack,
    membership_attack,
    membership_auc,
    nearest_distances,
    privacy_sentence,
    tpr_at_fpr,
)

# ---------------------------------------------------------------------------------------------
# The attack's figures


def test_membership_auc_by_hand_and_against_sklearn():
    from sklearn.metrics import roc_auc_score

    # Pairs (member, non-member): (3,1) win, (3,2) win, (2,1) win, (2,2) tie -> 3.5 / 4.
    assert membership_auc([3.0, 2.0], [1.0, 2.0]) == 0.875
    assert membership_auc([0.0], [1.0]) == 0.0 and membership_auc([1.0], [1.0]) == 0.5
    rng = np.random.default_rng(0)
    for _ in range(5):
        members = np.round(rng.normal(0.3, 1, 57), 1)  # rounding makes ties
        nonmembers = np.round(rng.normal(0, 1, 43), 1)
        labels = np.r_[np.ones(57), np.zeros(43)]
        expected = roc_auc_score(labels, np.r_[members, nonmembers])
        assert membership_auc(members, nonmembers) == pytest.approx(expected, abs=1e-12)


def test_tpr_at_fpr_by_hand_and_against_sklearn_roc_curve():
    from sklearn.metrics import roc_curve

    members, nonmembers = [9.0, 8.0, 3.0, 1.0], [7.0, 2.0, 0.0, -1.0]
    # t=8: 2 members, 0 non-members; t=3: 3 members, 1 non-member (7).
    assert tpr_at_fpr(members, nonmembers, 0.0) == 0.5
    assert tpr_at_fpr(members, nonmembers, 0.25) == 0.75
    assert tpr_at_fpr(members, nonmembers, 1.0) == 1.0
    # A tie between the top member and a non-member cannot be split: nothing at FPR 0.
    assert tpr_at_fpr([5.0, 1.0], [5.0, 0.0], 0.0) == 0.0
    rng = np.random.default_rng(1)
    for fpr in (0.0, 0.01, 0.1, 0.5):
        members = np.round(rng.normal(0.5, 1, 300), 2)
        nonmembers = np.round(rng.normal(0, 1, 200), 2)
        false_positive, true_positive, _ = roc_curve(np.r_[np.ones(300), np.zeros(200)], np.r_[members, nonmembers])
        expected = true_positive[false_positive <= fpr].max()
        assert tpr_at_fpr(members, nonmembers, fpr) == pytest.approx(expected, abs=1e-12), fpr


def test_bootstrap_interval_covers_the_auc_narrows_with_more_images_and_is_reproducible():
    rng = np.random.default_rng(2)
    small = membership_attack(rng.normal(0.5, 1, 50), rng.normal(0, 1, 50), num_resamples=500)
    large = membership_attack(rng.normal(0.5, 1, 2000), rng.normal(0, 1, 2000), num_resamples=500)
    for attack in (small, large):
        assert attack["ci_low"] < attack["auc"] < attack["ci_high"]
    assert large["ci_high"] - large["ci_low"] < 0.5 * (small["ci_high"] - small["ci_low"])
    # d' = 0.5: AUC = Phi(0.5 / sqrt(2)) = 0.638; the interval's half-width is about 0.017.
    assert abs(large["auc"] - 0.638) < 0.03 and 0.01 < large["ci_high"] - large["ci_low"] < 0.05
    assert large["num_members"] == 2000 and set(large["tpr_at_fpr"]) == {"0.01", "0.1"}
    again = membership_attack(
        *[np.random.default_rng(2).normal(0.5, 1, 50), np.random.default_rng(2).normal(0, 1, 50)],
        num_resamples=500,
    )
    assert again == membership_attack(
        *[np.random.default_rng(2).normal(0.5, 1, 50), np.random.default_rng(2).normal(0, 1, 50)],
        num_resamples=500,
    )


def test_class_balanced_attack_ignores_a_class_mix_that_differs_between_members_and_others():
    """Members 25 % normal, non-members 40 %, and one class scores higher: no membership signal at all."""
    from sklearn.metrics import roc_auc_score, roc_curve

    from ragan.evaluation.privacy import class_balance_weights

    rng = np.random.default_rng(7)
    member_groups = np.r_[np.zeros(250, int), np.ones(750, int)]
    nonmember_groups = np.r_[np.zeros(400, int), np.ones(600, int)]
    members = rng.normal(size=1000) + 1.5 * (member_groups == 0)
    nonmembers = rng.normal(size=1000) + 1.5 * (nonmember_groups == 0)
    plain = membership_attack(members, nonmembers, num_resamples=300)
    balanced = membership_attack(
        members, nonmembers, member_groups=member_groups, nonmember_groups=nonmember_groups, num_resamples=300
    )
    assert plain["ci_high"] < 0.5  # the class mix alone makes the attack look informative
    assert balanced["ci_low"] < 0.5 < balanced["ci_high"] and balanced["class_balanced"] is True
    # The weighted figures are sklearn's with sample_weight.
    member_weights, nonmember_weights = class_balance_weights(member_groups, nonmember_groups)
    labels, scores = np.r_[np.ones(1000), np.zeros(1000)], np.r_[members, nonmembers]
    weights = np.r_[member_weights, nonmember_weights]
    assert balanced["auc"] == pytest.approx(roc_auc_score(labels, scores, sample_weight=weights), abs=1e-12)
    false_positive, true_positive, _ = roc_curve(labels, scores, sample_weight=weights)
    expected = true_positive[false_positive <= 0.1 + 1e-12].max()
    assert balanced["tpr_at_fpr"]["0.1"] == pytest.approx(expected, abs=1e-12)


def test_attack_inputs_are_checked_in_one_line():
    with pytest.raises(RaganError, match="member_scores: no scores"):
        membership_auc([], [1.0])
    with pytest.raises(RaganError, match="nonmember_scores: 1 score"):
        membership_auc([1.0], [np.nan])
    with pytest.raises(RaganError, match="fpr=1.5 is not allowed"):
        tpr_at_fpr([1.0], [0.0], 1.5)
    with pytest.raises(RaganError, match="num_resamples=5 is not allowed"):
        membership_attack([1.0], [0.0], num_resamples=5)


# ---------------------------------------------------------------------------------------------
# The black-box attack on tiny images


def _images(rng, n, size=12):
    """Smooth random 'images': a few random low-frequency patterns, so neighbours mean something."""
    basis = rng.normal(size=(6, size, size, 1))
    return np.tanh(np.einsum("nk,khwc->nhwc", rng.normal(size=(n, 6)), basis) / 2).astype(np.float32)


def test_planted_leak_is_found():
    """A 'generator' whose outputs are its training images plus noise: the attack finds almost every patient."""
    rng = np.random.default_rng(3)
    population = _images(rng, 160)
    train, held_out = population[:80], population[80:]
    synthetic = np.clip(train + rng.normal(0, 0.05, train.shape), -1, 1)
    attack = distance_attack(train, held_out, synthetic, num_resamples=500)
    assert attack["auc"] > 0.95 and attack["ci_low"] > LEAK_AUC
    assert attack["tpr_at_fpr"]["0.01"] > 0.5
    assert attack["member_distance"]["median"] < attack["nonmember_distance"]["median"]
    assert attack_finding(attack) == "leak"
    sentence = privacy_sentence(attack)
    assert sentence.startswith("An attacker with the synthetic set can tell the training patients")
    assert "LEAK" in sentence


def test_clean_generator_is_not_accused():
    """Synthetic images drawn from the distribution but not from the training images: chance."""
    rng = np.random.default_rng(4)
    population = _images(rng, 400)
    train, held_out, synthetic = population[:120], population[120:240], population[240:]
    attack = distance_attack(train, held_out, synthetic, num_resamples=500)
    assert 0.4 < attack["auc"] < 0.6 and attack["ci_low"] < 0.5 < attack["ci_high"]
    assert attack_finding(attack) == "chance"
    assert privacy_sentence(attack).startswith("An attacker with the synthetic set cannot tell")
    # Features work the same as pixels: any (N, D) rows.
    flat = [part.reshape(len(part), -1) for part in (train, held_out, synthetic)]
    assert distance_attack(*flat, num_resamples=100)["auc"] == pytest.approx(attack["auc"])


def test_nearest_distances_reuse_the_nearest_image_search():
    references = np.stack([np.zeros((4, 4, 1)), np.ones((4, 4, 1))])
    queries = np.stack([np.full((4, 4, 1), 0.8), np.full((4, 4, 1), 0.1)])
    np.testing.assert_allclose(nearest_distances(queries, references), [0.2, 0.1])


def test_privacy_sentence_and_finding_read_the_interval():
    assert privacy_sentence({"auc": 0.58, "ci_low": 0.53, "ci_high": 0.63}, where="pixels").startswith(
        "An attacker with the synthetic set can tell the training patients from others better than chance "
        "(AUC 0.58 [0.53, 0.63]; pixels)."
    )
    assert "LEAK" not in privacy_sentence({"auc": 0.65, "ci_low": 0.6, "ci_high": 0.7})
    assert attack_finding({"ci_low": 0.55}) == "above chance"


def test_privacy_audit_section_per_class_floor_and_white_box_sentences():
    from ragan.evaluation.privacy_audit import privacy_audit

    rng = np.random.default_rng(8)
    population = _images(rng, 360)
    labels = rng.integers(0, 2, 360)
    train, held_out, val = population[:120], population[120:240], population[240:]
    # A leak in class 1 only: its training images come back with a little noise; class 0 is drawn afresh.
    leaked = train[labels[:120] == 1] + rng.normal(0, 0.05, train[labels[:120] == 1].shape)
    synthetic = np.concatenate([leaked, _images(rng, 60)])
    spaces = {"pixels": {"train": train, "held_out": held_out, "synthetic": synthetic, "unseen": val}}
    # A discriminator that scores the training images' pool (members and unseen alike) above the held-out split.
    white = {
        "member_scores": rng.normal(0.5, 1, 120),
        "nonmember_scores": rng.normal(0, 1, 120),
        "unseen_scores": rng.normal(0.5, 1, 120),
        "name": "discriminator of the saved model (step 9)",
    }
    audit = privacy_audit(
        spaces,
        labels[:120],
        labels[120:240],
        ["normal", "pneumonia"],
        unseen_labels=labels[240:],
        discriminators={"discriminator": white},
        num_resamples=300,
    )
    attacks = {attack["key"]: attack for attack in audit["attacks"]}
    assert set(attacks) == {"pixel", "discriminator"} and audit["flag"] is True and audit["finding"] == "leak"
    assert attacks["pixel"]["class_balanced"] is True and attacks["pixel"]["num_synthetic"] == len(synthetic)
    floors = attacks["pixel"]["floors"]
    assert 0.35 < floors["unseen_as_synthetic"]["auc"] < 0.65  # unseen real images in the synthetic set's place
    assert 0.35 < floors["unseen_as_members"]["auc"] < 0.65  # the leak is about the members, not their pool
    assert attacks["discriminator"]["ci_low"] > 0.5 and attacks["discriminator"]["finding"] == "above chance"
    assert attacks["discriminator"]["floors"]["unseen_as_members"]["ci_low"] > 0.5
    rows = {row["class"]: row for row in audit["per_class"]}
    assert rows["pneumonia"]["attacks"]["pixel"]["auc"] > 0.95  # the leak is in this class
    assert rows["normal"]["attacks"]["pixel"]["ci_low"] < 0.5 < rows["normal"]["attacks"]["pixel"]["ci_high"]
    assert (
        audit["sentences"][0].startswith("An attacker with the synthetic set can tell")
        and "LEAK" in audit["sentences"][0]
    )
    # Above chance, but no more than unseen images of the same pool: the sentence says it is the splits.
    assert audit["sentences"][1].startswith("An attacker with the GAN's discriminator can tell")
    assert "discriminator of the saved model (step 9)). But images the GAN never saw" in audit["sentences"][1]
    assert audit["sentences"][1].endswith("the attack tells the splits apart, not who was trained on.")
    assert "tells the splits apart" not in audit["sentences"][0]
    assert all("distances" not in attack and "scores" not in attack for attack in audit["attacks"])


# ---------------------------------------------------------------------------------------------
# Floors


def test_floor_sizes_keep_the_comparison_sizes_or_its_proportion():
    assert floor_sizes(100, 300, 1000) == (100, 300)
    assert floor_sizes(400, 400, 400) == (200, 200)
    assert floor_sizes(300, 100, 400) == (300, 100)
    assert floor_sizes(1, 1000, 10) == (1, 9)
    with pytest.raises(RaganError, match="available=0 is not allowed"):
        floor_sizes(1, 1, 0)


def test_floor_ratio_refuses_noise_floors():
    assert floor_ratio("FID", 12.0, 3.0) == 4.0
    assert floor_ratio("KID", 0.02, 0.001, 0.004) is None  # floor within 2 std of zero
    assert floor_ratio("KID", 0.02, 0.01, 0.001) == pytest.approx(2.0)
    assert floor_ratio("KID", 0.02, -0.001, 0.004) is None and floor_ratio("recall", 0.2, 0.0) is None
    assert floor_ratio("KID", -0.001, 0.01, 0.001) is None and floor_ratio("recall", 0.0, 0.8) == 0.0


def test_feature_floors_real_vs_real_is_near_the_synthetic_figure_only_when_they_match():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(600, 6))
    same = {row["metric"]: row for row in feature_floors(real, rng.normal(size=(300, 6)), kid_subsets=20)}
    shifted = {row["metric"]: row for row in feature_floors(real, rng.normal(1.0, 1, (300, 6)), kid_subsets=20)}
    for rows in (same, shifted):
        # 600 real rows split 2 : 1 like the 600 : 300 comparison.
        assert {(row["num_reference"], row["num_compared"]) for row in rows.values()} == {(400, 200)}
        assert rows["FID"]["real"] == same["FID"]["real"]  # the same real split whatever the synthetic set
    assert 0.3 < same["FID"]["ratio"] < 3 and shifted["FID"]["ratio"] > 20
    assert 0.8 < same["precision"]["ratio"] < 1.25 and 0.8 < same["recall"]["ratio"] < 1.25
    assert shifted["precision"]["synthetic"] < 0.8 * shifted["precision"]["real"]
    assert shifted["KID"]["synthetic"] > 0.1 and shifted["KID"]["real_std"] is not None


# ---------------------------------------------------------------------------------------------
# Precision and recall: not swapped (torch-fidelity shipped them swapped for years)


def test_mode_collapse_gives_high_precision_low_recall_and_dispersion_the_reverse():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(500, 8))
    collapsed = real[0] + rng.normal(scale=0.01, size=(500, 8))  # all near one real point
    dispersed = rng.normal(scale=4.0, size=(500, 8))  # spread far beyond the real data
    collapsed_pr = precision_recall_from_features(real, collapsed, k=3)
    dispersed_pr = precision_recall_from_features(real, dispersed, k=3)
    assert collapsed_pr["precision"] > 0.95 and collapsed_pr["recall"] < 0.05, collapsed_pr
    assert dispersed_pr["precision"] < 0.2 and dispersed_pr["recall"] > 0.8, dispersed_pr


# ---------------------------------------------------------------------------------------------
# The white-box attack on a GAN that memorised its training images


@pytest.mark.slow
def test_discriminator_of_a_gan_overfitted_to_32_images_gives_its_members_away(pneumonia_npz):
    """A DCGAN trained for 400 steps on 32 images: its discriminator scores them above 32 others."""
    from ragan._tf import import_keras, import_tf
    from ragan.evaluation.privacy_audit import discriminator_scores
    from ragan.models import DCGAN

    tf, keras = import_tf(), import_keras()
    pixels = np.load(pneumonia_npz)["train_images"][:64, ..., None].astype(np.float32)
    images = tf.image.resize(pixels, (16, 16), method="area").numpy() / 127.5 - 1.0
    members, nonmembers = images[:32], images[32:]
    keras.utils.set_random_seed(0)
    gan = DCGAN({"latent_dim": 16, "base_filters": 16}, image_size=16)
    gan.compile()
    batches = tf.data.Dataset.from_tensor_slices(members).repeat().shuffle(32, seed=0).batch(32, drop_remainder=True)
    gan.fit(batches, steps_per_epoch=400, epochs=1, verbose=0)
    scores = discriminator_scores(gan, np.concatenate([members, nonmembers]), seed=0)
    attack = membership_attack(scores[:32], scores[32:], num_resamples=500)
    assert attack["auc"] > 0.75 and attack["ci_low"] > 0.5, attack
    # Scoring order does not change a score (DCGAN's D looks at one image at a time).
    np.testing.assert_allclose(discriminator_scores(gan, members, seed=1), scores[:32], rtol=1e-4, atol=1e-4)
