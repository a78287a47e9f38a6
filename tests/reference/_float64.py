"""The one helper the transcriptions share: turning inputs into fresh float64 arrays."""

import numpy as np


def float64_copy(array):
    """A float64 copy of ``array``, so a transcription never touches its caller's data."""
    return np.array(array, dtype=np.float64, copy=True)
