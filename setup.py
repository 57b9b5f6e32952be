"""The optional compiled parser; everything else is in pyproject.toml.

``optional=True``: without a C compiler the package installs and runs on
its pure-Python parser alone.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("levredis._speedups", ["src/levredis/_speedups.c"], optional=True)])
