"""Sphinx configuration for the pseudoinverse documentation.

Build (as CI does, warnings are errors):
    sphinx-build -W --keep-going -q -b html docs docs/_build/html
    sphinx-build -W --keep-going -q -b doctest docs docs/_build/doctest
"""

import inspect

import pseudoinverse

project = "pseudoinverse"
author = "the pseudoinverse developers"
copyright = "2026, the pseudoinverse developers"
release = version = pseudoinverse.__version__

extensions = [
    "sphinx.ext.autodoc",  # the API reference, from the docstrings
    "sphinx.ext.doctest",  # `-b doctest` runs every example and checks its output
    "numpydoc",  # the docstrings are numpydoc (STYLE.md, habit 12)
    "myst_parser",  # Markdown pages: the contract copy and CHANGELOG.md
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3  # the contract's and changelog's headings get link targets

# numpydoc: no member tables for classes (PinvResult's fields are in its docstring),
# hence no autosummary stubs and no toctree warnings.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_default_options = {"exclude-members": "__init__"}

# The doctest builder: pages call numpy, torch, jax, dask, mlx; `:skipif:` uses these.
doctest_global_setup = """
import importlib.util
import numpy as np
import pseudoinverse as pi
missing = lambda name: importlib.util.find_spec(name) is None
"""

html_theme = "alabaster"
html_static_path = []


# The API page lists every name of ``pseudoinverse.__all__`` at build time: the line
# ``.. api-all::`` in api.rst becomes one autofunction/autoclass directive per name, so
# a newly exported function is documented (from its docstring) without editing the page.
def _api_all(app, docname, source):
    if docname != "api":
        return
    lines = []
    for name in sorted(pseudoinverse.__all__):
        kind = "autoclass" if inspect.isclass(getattr(pseudoinverse, name)) else "autofunction"
        lines.append(f".. {kind}:: pseudoinverse.{name}\n")
    source[0] = source[0].replace(".. api-all::\n", "\n".join(lines))


def setup(app):
    app.connect("source-read", _api_all)
