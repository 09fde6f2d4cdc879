"""Sphinx configuration for the nursery docs.

Build with ``make docs`` (sphinx-build -W --keep-going: warnings are errors).
The build must work offline: no intersphinx, no remote themes or assets.
"""

import os
import sys

# Document the checkout this file lives in, even if another copy of nursery is
# installed (the dev venv's editable install points here anyway).
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

project = "nursery"
author = "the nursery developers"
copyright = "the nursery developers"

try:
    from importlib.metadata import version as _dist_version

    release = _dist_version("nursery")
except Exception:  # not installed: the docs still build
    release = "dev"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

# Runnable examples are plain `.. code-block:: python` blocks (run by
# tests/test_docs_examples.py), so Python is the default highlight language.
highlight_language = "python3"
primary_domain = "py"
default_role = "py:obj"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

templates_path = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

html_theme = "alabaster"
html_static_path = ["_static"]
html_title = "nursery"
