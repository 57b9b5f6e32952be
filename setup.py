"""The optional compiled parser; everything else is in pyproject.toml.

``optional=True``: without a C compiler the package installs and runs on
its pure-Python parser alone. The sdist leaves out setuptools' egg-info
folder (PKG-INFO at its root is the metadata; the folder is build scratch).
"""

from setuptools import Extension, setup
from setuptools.command.sdist import sdist


class SdistWithoutEggInfo(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        files = [name for name in files if ".egg-info" not in name]
        super().make_release_tree(base_dir, files)


setup(ext_modules=[Extension("levredis._speedups", ["src/levredis/_speedups.c"], optional=True)],
      cmdclass={"sdist": SdistWithoutEggInfo})
