"""Small data sets for examples, tests and the ``emkit demo`` command.

``load_faithful`` reads the Old Faithful data bundled with emkit
(``emkit/datasets/data/faithful.csv``): the 272 observations of R's ``datasets::faithful``,
after Härdle (1991) and Azzalini and Bowman (1990), the data set of Bishop's *Pattern
Recognition and Machine Learning* (2006), figures 9.1 and 9.8. ``load_iris``, ``load_wine``
and ``load_digits`` are scikit-learn's loaders, re-exported so that examples need one import.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.utils import Bunch

__all__ = ["load_digits", "load_faithful", "load_iris", "load_wine"]

FAITHFUL_DESCR = """\
.. _faithful_dataset:

Old Faithful geyser data
------------------------

Waiting time between eruptions and the duration of the eruption for the Old Faithful geyser
in Yellowstone National Park, Wyoming, USA.

:Number of instances: 272
:Number of attributes: 2 numeric
:Attribute information:
    - eruptions: eruption time (minutes)
    - waiting: waiting time to the next eruption (minutes)
:Missing attribute values: none

The eruption times are heavily rounded: they were originally recorded in seconds, and
multiples of 5 seconds are more frequent than a measuring device would give. The two
clusters of short and long eruptions make the data a classic example for clustering
(Bishop, 2006, figures 9.1 and 9.8, where the variables are standardised first).

This copy is the data frame ``faithful`` distributed with R (package ``datasets``).

.. rubric:: References

- Azzalini, A. and Bowman, A. W. (1990). A look at some data on the Old Faithful geyser.
  *Applied Statistics* 39(3), 357-365. https://doi.org/10.2307/2347385
- Härdle, W. (1991). *Smoothing Techniques with Implementation in S*. New York: Springer.
- R Core Team. ``faithful``: Old Faithful Geyser Data. R package ``datasets``.
- Bishop, C. M. (2006). *Pattern Recognition and Machine Learning*. New York: Springer,
  appendix A.
"""


def load_faithful(*, as_frame: bool = False) -> Bunch:
    """Load the Old Faithful geyser data (272 eruptions, 2 features).

    Parameters
    ----------
    as_frame : bool, default=False
        Also return the data as a pandas DataFrame in ``frame`` (and ``data`` as that same
        DataFrame), as scikit-learn's loaders do. Needs pandas.

    Returns
    -------
    sklearn.utils.Bunch
        ``data``: float64 array of shape (272, 2), or a DataFrame when ``as_frame``;
        ``feature_names``: ``["eruptions", "waiting"]`` (both in minutes);
        ``frame``: the DataFrame, or None; ``DESCR``: description and source citation;
        ``filename``: name of the bundled CSV file.

    Raises
    ------
    ImportError
        If ``as_frame`` is true and pandas is not installed.

    References
    ----------
    .. [1] Azzalini, A. and Bowman, A. W. (1990). A look at some data on the Old Faithful
       geyser. Applied Statistics 39(3), 357-365.
    .. [2] Härdle, W. (1991). Smoothing Techniques with Implementation in S. Springer.

    Examples
    --------
    >>> from emkit.datasets import load_faithful
    >>> faithful = load_faithful()
    >>> faithful.data.shape
    (272, 2)
    >>> faithful.feature_names
    ['eruptions', 'waiting']
    """
    filename = "faithful.csv"
    source = resources.files(__name__).joinpath("data").joinpath(filename)
    with source.open("r", encoding="utf-8") as stream:
        header = stream.readline().strip().split(",")
        data = np.loadtxt(stream, delimiter=",", dtype=np.float64, ndmin=2)
    frame = None
    if as_frame:
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "load_faithful(as_frame=True) needs pandas: pip install 'emkit[io]'"
            ) from None
        frame = pd.DataFrame(data, columns=header)
    return Bunch(
        data=frame if as_frame else data,
        feature_names=header,
        frame=frame,
        DESCR=FAITHFUL_DESCR,
        filename=filename,
    )
