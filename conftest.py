"""Test session set-up shared by the tests and the doctests.

scikit-learn's array-API estimator checks run only when SciPy's array-API support is on,
which must be decided before SciPy is first imported.
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")
