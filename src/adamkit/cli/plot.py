"""The PNG of the training-loss curves, drawn with matplotlib's Agg canvas (no display)."""

from itertools import cycle

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

FIGURE_INCHES = (9.0, 5.5)
DPI = 100  # the PNG is FIGURE_INCHES × DPI pixels: 900 × 550
# Curves that nearly coincide (Adam and AdamW with a small weight decay) stay visible.
LINE_STYLES = ("-", "--", "-.", ":")


def plot_train_loss(runs, path, title):
    """Write the per-epoch training loss of each run, on a log scale, to the PNG ``path``."""
    figure = Figure(figsize=FIGURE_INCHES, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for run, style in zip(runs, cycle(LINE_STYLES)):
        epochs = range(len(run.train_loss))
        label = f"{run.optimizer} (lr={run.hyperparameters['lr']:g})"
        axes.plot(epochs, run.train_loss, style, marker="o", markersize=3, label=label)
    axes.set_yscale("log")
    axes.margins(x=0.02)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("training loss (cross-entropy, whole train set)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
