"""The operating-point rules of hostside/evaluate.py: event peaks of a negative stream, the peaks-over-threshold
estimate of the false-accept rate, and the rule that uses it against the plain validation count."""
from __future__ import annotations

import numpy as np
import pytest

from hostside.evaluate import (OPERATING_RULES, Detector, _logit, choose_operating_point, event_peaks,
                               tail_fa_rate)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_event_peaks_one_per_excursion_and_refractory():
    s = np.zeros(200)
    s[10:15] = [0.2, 0.5, 0.9, 0.5, 0.2]          # one excursion, peak 0.9
    s[40:44] = 0.7                                  # a plateau shorter than the gap counts once
    s[100], s[104] = 0.6, 0.8                       # two bumps 4 windows apart: one event at a gap of 10
    s[150], s[180] = 0.3, 0.4                       # separate
    assert sorted(event_peaks(s, gap=10)) == pytest.approx(sorted([0.9, 0.7, 0.8, 0.3, 0.4]))
    # at a gap of 2 the bumps are two events, and so is the 4-window plateau (the detector fires on it twice)
    assert sorted(event_peaks(s, gap=2)) == pytest.approx(sorted([0.9, 0.7, 0.7, 0.6, 0.8, 0.3, 0.4]))
    assert len(Detector(0.65, 1, 100.0, 0.2).triggers(s[30:60])) == 2
    assert len(event_peaks(np.zeros(0), 10)) == 0
    # the number of peaks at or above t is the detector's trigger count (smoothing 1, same refractory)
    rng = np.random.default_rng(0)
    post = np.convolve(rng.random(5000) ** 8, np.ones(3) / 3, mode="same")
    peaks = event_peaks(post, gap=10)
    for t in (0.3, 0.5, 0.7):
        n = len(Detector(t, 1, 100.0, 1.0).triggers(post))
        assert abs(int((peaks >= t).sum()) - n) <= max(2, 0.1 * n)


def test_tail_rate_extrapolates_an_exponential_tail_and_counts_below_it():
    rng = np.random.default_rng(1)
    hours, u0, beta = 10.0, 0.0, 0.8
    z = u0 + rng.exponential(beta, 4000)                # 400 peaks an hour above logit 0
    peaks = _sigmoid(z)
    for zt in (4.0, 6.0, 9.0):                          # 9.0: beyond every peak seen (max ≈ 0.8·ln 4000 ≈ 6.6)
        true = 4000 / hours * np.exp(-(zt - u0) / beta)
        est = tail_fa_rate(peaks, hours, float(_sigmoid(zt)), k=400)
        assert est == pytest.approx(true, rel=0.35), zt
    # at or below the fitted tail's start it is the observed count
    t = float(np.sort(peaks)[-1000])
    assert tail_fa_rate(peaks, hours, t, k=400) == pytest.approx(1000 / hours)
    # few peaks: the count
    assert tail_fa_rate(np.array([0.97]), 1.0, 0.98, k=20) == 0.0
    assert tail_fa_rate(np.array([0.97]), 1.0, 0.96, k=20) == 1.0
    assert tail_fa_rate(peaks, 0.0, 0.5) == float("inf")


def test_tail_rule_does_not_sit_just_above_the_highest_negative_seen():
    """Validation negatives whose peaks fall off exponentially on the logit scale, with none above 0.87 in the
    half hour seen: the count rule takes the lowest threshold above them (0.9-ish) although the tail says that
    threshold fires many times an hour; the tail rule goes up to where the estimate is within the target."""
    rng = np.random.default_rng(2)
    stride, n = 100.0, 18000                             # 0.5 h of windows
    stream = np.zeros(n)
    z = rng.exponential(0.6, 300) - 1.0                  # 300 negative events, logit tail falling e-fold per 0.6
    z = np.append(z[z < _logit(0.87)], _logit(0.87))     # the highest seen: 0.87
    stream[np.arange(len(z)) * 50 + 25] = _sigmoid(z)
    val_pos = [np.full(5, p) for p in np.linspace(0.5, 0.9999, 200)]
    count = choose_operating_point(val_pos, stream, 0.5, stride, 1.0, 1.0, smooth=1, rule="count")
    tail = choose_operating_point(val_pos, stream, 0.5, stride, 1.0, 1.0, smooth=1, rule="tail")
    assert count["val_false_accepts"] == 0 and count["threshold"] == pytest.approx(0.88)   # the first step above
    assert tail["val_false_accepts"] == 0 and tail["val_met"] and tail["rule"] == "tail"
    assert tail["threshold"] > count["threshold"] and tail["val_estimated_fa_per_hour"] <= 1.0
    assert tail_fa_rate(event_peaks(stream, 10), 0.5, count["threshold"]) > 1.0   # what the count rule ignored
    assert tail["val_frr"] > count["val_frr"]
    with pytest.raises(ValueError):
        choose_operating_point(val_pos, stream, 0.5, stride, 1.0, 1.0, rule="nope")
    assert set(OPERATING_RULES) == {"count", "tail"}


def test_the_protocol_fixes_the_smoothing_and_validation_chooses_it_only_when_asked():
    """Validation's wake words are one-window spikes and its negatives quiet: choosing the smoothing there takes
    one window (the highest threshold at the lowest FRR), which is what made the old protocol smooth too little on
    real speech (attempts.md §21). The protocol keeps its own smoothing unless asked to choose it."""
    from hostside.evaluate import DETECTOR_SMOOTHING, SMOOTHING, smoothing_of
    val_pos = [np.r_[np.zeros(10), p, np.zeros(10)] for p in np.linspace(0.5, 0.99, 50)]
    stream = np.zeros(18000)                                            # 0.5 h, nothing fires
    default = choose_operating_point(val_pos, stream, 0.5, 100.0, 1.0, 1.0)
    chosen = choose_operating_point(val_pos, stream, 0.5, 100.0, 1.0, 1.0, smooth="validation")
    assert DETECTOR_SMOOTHING == 5 and default["smooth"] == 5 and default["val_frr"] == 0.0
    assert chosen["smooth"] == 1 and chosen["threshold"] == 0.5 and chosen["val_frr"] == 0.0
    assert choose_operating_point(val_pos, stream, 0.5, 100.0, 1.0, 1.0, smooth=3)["smooth"] == 3
    assert DETECTOR_SMOOTHING in SMOOTHING and Detector(0.5).smooth == DETECTOR_SMOOTHING
    assert smoothing_of(None) == 5 and smoothing_of(7) == 7 and smoothing_of("validation") is None
    for bad in (0, -1, True, 2.5, "five"):
        with pytest.raises(ValueError, match="validation"):
            smoothing_of(bad)
    with pytest.raises(ValueError):
        choose_operating_point(val_pos, stream, 0.5, 100.0, 1.0, 1.0, smooth=0)


def test_cli_smooth_takes_a_number_of_windows_or_validation(capsys):
    from hostside.cli import _parser
    p, ev = _parser(), ["eval", "--checkpoint", "m.pt"]
    assert p.parse_args(ev + ["--smooth", "validation"]).smooth == "validation"
    assert p.parse_args(ev + ["--smooth", "7"]).smooth == 7 and p.parse_args(ev).smooth is None
    for bad in ("0", "x"):
        with pytest.raises(SystemExit) as e:
            p.parse_args(ev + ["--smooth", bad])
        assert e.value.code == 2 and "'validation'" in capsys.readouterr().err


def test_the_threshold_is_read_to_a_hundredth_just_above_the_validation_negatives_peak():
    """The phoneme score puts wake words and negatives in 0.3–0.7 (attempts.md §38): a grid of 0.05 put the threshold
    up to 0.05 above the negatives' highest peak, missing every wake word in between."""
    from hostside.evaluate import THRESHOLDS
    val_pos = [np.r_[np.zeros(10), np.full(6, p), np.zeros(10)] for p in np.linspace(0.40, 0.60, 41)]
    stream = np.zeros(18000)                                            # 0.5 h: no false accept allowed
    stream[9000:9006] = 0.421                                           # one event, smoothed peak 0.421
    op = choose_operating_point(val_pos, stream, 0.5, 100.0, 1.0, 1.0)
    assert op["threshold"] == pytest.approx(0.43) and op["val_false_accepts"] == 0
    assert op["val_frr"] == pytest.approx(np.mean(np.linspace(0.40, 0.60, 41) < 0.43 - 1e-9))
    steps = np.diff([t for t in THRESHOLDS if t <= 0.95])
    assert np.allclose(steps, 0.01) and THRESHOLDS[0] == 0.01 and THRESHOLDS[-1] == 0.9995
