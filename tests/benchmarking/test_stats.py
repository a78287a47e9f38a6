import pytest

from adamkit.benchmarking.stats import summarize


def test_median_of_odd_count_is_the_middle_sample():
    assert summarize([9.0, 1.0, 5.0, 7.0, 3.0]).median == 5.0


def test_median_of_even_count_is_the_mean_of_the_two_middle_samples():
    assert summarize([4.0, 1.0, 10.0, 2.0]).median == 3.0


def test_one_outlier_does_not_move_the_median():
    assert summarize([1.0, 1.0, 1.0, 1e9, 1.0]).median == 1.0


def test_range_and_count():
    summary = summarize([0.25, 0.5, 0.125, 2.0, 1.0, 0.75, 4.0])
    assert (summary.minimum, summary.maximum, summary.count) == (0.125, 4.0, 7)
    assert summary.median == 0.75


def test_single_sample_is_its_own_summary():
    assert summarize([0.3]) == (0.3, 0.3, 0.3, 1)


def test_no_samples_raises_naming_the_argument():
    with pytest.raises(ValueError, match="samples"):
        summarize([])
