"""pseudoinverse: the Moore–Penrose pseudo-inverse for the arrays of any library.

>>> import numpy as np
>>> import pseudoinverse as pi
>>> pi.pinv(np.array([[2.0, 0.0], [0.0, 0.0]]))
array([[0.5, 0. ],
       [0. , 0. ]])
"""

from ._api import (
    PinvResult,
    SolveResult,
    damped_pinv,
    damped_pinv_solve,
    pinv,
    pinv_solve,
    pinverse,
)
from ._operator import ConvergenceWarning, pinv_operator

__all__ = [
    "ConvergenceWarning",
    "PinvResult",
    "SolveResult",
    "damped_pinv",
    "damped_pinv_solve",
    "pinv",
    "pinv_operator",
    "pinv_solve",
    "pinverse",
]
__version__ = "0.1.0"
