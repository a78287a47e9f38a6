"""The PNGs of ``compare``: training curves, and diagnostics over training (matplotlib's Agg canvas)."""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from adamkit.compare.choices import OPTIMIZERS

DPI = 100
CURVES_INCHES = (12.0, 5.0)  # 1200 × 500 pixels
DIAGNOSTICS_INCHES = (12.0, 7.5)  # 1200 × 750 pixels
# Curves that nearly coincide (Adam, AdamW and AMSGrad) stay visible.
LINE_STYLES = ("-", "--", ":", "-.")


def line_style(name):
    """The colour and dash of optimizer ``name``, the same in every figure."""
    index = list(OPTIMIZERS).index(name)
    return {"color": f"C{index}", "linestyle": LINE_STYLES[index % len(LINE_STYLES)]}


def plot_curves(summaries, path, title):
    """Write the training loss (log scale) and test accuracy per epoch of each optimizer.

    Each line is the mean over seeds; with several seeds a band spans the lowest to the highest.
    """
    figure, (loss_axes, accuracy_axes) = _figure(CURVES_INCHES, 1, 2)
    for summary in summaries:
        label = f"{summary.label} (lr={summary.hyperparameters['lr']:g})"
        for axes, key in ((loss_axes, "train_loss"), (accuracy_axes, "test_accuracy")):
            curves = np.array([getattr(run, key) for run in summary.runs], dtype=np.float64)
            _mean_and_band(axes, np.arange(curves.shape[1]), curves, summary.name, label)
    loss_axes.set_yscale("log")
    loss_axes.set_ylabel("training loss (whole train set, dropout off)")
    accuracy_axes.set_ylabel("test accuracy")
    finals = [summary.final_test_accuracy for summary in summaries]
    accuracy_axes.set_ylim(max(0.0, min(finals) - 0.05), 1.0)
    for axes in (loss_axes, accuracy_axes):
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.margins(x=0.02)
        axes.grid(True, which="both", alpha=0.3)
    accuracy_axes.legend(loc="lower right", fontsize="small")
    _save(figure, path, title)


def plot_diagnostics(summaries, path, title):
    """Write how each optimizer's diagnostics (first parameter group, first seed) evolve."""
    figure, axes = _figure(DIAGNOSTICS_INCHES, 2, 3)
    step_axes, ratio_axes, eps_axes = axes[0]
    bias_axes, nonfinite_axes, legend_axes = axes[1]
    for summary in summaries:
        records = summary.runs[0].diagnostics
        steps = [record["step"] for record in records]
        groups = [record["groups"][0] for record in records]
        style = line_style(summary.name)
        quantiles = [group["step_size"] or {} for group in groups]
        median = _values(quantile.get("median") for quantile in quantiles)
        step_axes.plot(steps, median, label=summary.label, **style)
        step_axes.fill_between(steps, _values(q.get("p25") for q in quantiles),
                               _values(q.get("p75") for q in quantiles), color=style["color"], alpha=0.15)
        ratio_axes.plot(steps, _values(group["update_to_weight"] for group in groups), **style)
        eps_axes.plot(steps, _values(group["eps_dominated"] for group in groups), **style)
        bias_axes.plot(steps, _values(group["bias_correction1"] for group in groups),
                       color=style["color"], linestyle="-")
        bias_axes.plot(steps, _values(group["bias_correction2"] for group in groups),
                       color=style["color"], linestyle="--")
        nonfinite_axes.plot(steps, _values(group["nonfinite"] for group in groups), **style)
    panels = (
        (step_axes, "effective step size\n(median, band 25–75 %)", "log"),
        (ratio_axes, "‖update‖ / ‖weights‖", "log"),
        (eps_axes, "fraction where ε dominates\nthe denominator (Adam: ε > √v̂)", "linear"),
        (bias_axes, "1 − β₁ᵗ (solid), 1 − β₂ᵗ (dashed)", "linear"),
        (nonfinite_axes, "fraction of non-finite values", "linear"),
    )
    for panel, ylabel, scale in panels:
        panel.set_xscale("log")
        panel.set_yscale(scale)
        panel.set_xlabel("optimizer step")
        panel.set_ylabel(ylabel)
        panel.grid(True, which="both", alpha=0.3)
    legend_axes.axis("off")
    legend_axes.legend(*step_axes.get_legend_handles_labels(), loc="center", title="optimizer")
    _save(figure, path, title)


def _figure(inches, rows, columns):
    figure = Figure(figsize=inches, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns, squeeze=True)


def _mean_and_band(axes, x, curves, name, label):
    style = line_style(name)
    axes.plot(x, curves.mean(axis=0), marker="o", markersize=2.5, label=label, **style)
    if len(curves) > 1:
        axes.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=style["color"], alpha=0.15)


def _values(items):
    """Numbers for plotting, ``None`` (not measured for this rule) as NaN, which is not drawn."""
    return np.array([np.nan if item is None else item for item in items], dtype=np.float64)


def _save(figure, path, title):
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
