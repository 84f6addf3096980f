"""Compiled batch kernels (numba) on plain NumPy buffers.

They know no backend and no public argument: callers (``_methods/``) hand them
C-contiguous stacks, float64 tolerance vectors and preallocated outputs. Importing this
package does not import numba; each kernel module does, and is imported lazily by the
method that needs it (``import pseudoinverse`` must stay light).
"""
