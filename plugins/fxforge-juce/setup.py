"""Ships the C++ template (the repository's top-level ``juce/``) inside the package.

The canonical template lives in ``../../juce`` so that C++ people edit it
where they expect it. A regular build (``pip install plugins/fxforge-juce``,
``python -m build``) copies it into the wheel as ``fxforge_juce/template``;
an sdist carries a copy under ``src/fxforge_juce/template`` so that a wheel
built from the sdist alone still has it. An editable install copies nothing:
``fxforge_juce.generate.template_dir()`` finds ``../../juce`` at run time.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
REPO_TEMPLATE = HERE.parent.parent / "juce"
SDIST_TEMPLATE = HERE / "src" / "fxforge_juce" / "template"
IGNORE = shutil.ignore_patterns("build", "__pycache__", "*.pyc", ".DS_Store")


def template_source() -> Path:
    for candidate in (REPO_TEMPLATE, SDIST_TEMPLATE):
        if (candidate / "CMakeLists.txt").is_file():
            return candidate
    raise SystemExit("fxforge-juce: the C++ template (the repository's juce/ folder) is missing")


class BuildPy(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "fxforge_juce" / "template"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(template_source(), dest, ignore=IGNORE)


class Sdist(sdist):
    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        dest = Path(base_dir) / "src" / "fxforge_juce" / "template"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(template_source(), dest, ignore=IGNORE)


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
