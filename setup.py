"""Packaging beyond what pyproject.toml can say: the zoo's data folders travel in the wheel.

``registry/`` (weights, their manifests and training records) and ``recipes/`` (training
configs) stay at the repository's top level, where people look for them, and are mapped into
the package as ``codeczoo._registry`` and ``codeczoo._recipes`` at build time, so a wheel or a
non-editable install carries the whole zoo (``codeczoo.registry.packaged_registry``).
"""

from setuptools import find_packages, setup

ZOO_DATA = {"codeczoo._registry": "registry", "codeczoo._recipes": "recipes"}

setup(
    packages=find_packages(include=["codeczoo", "codeczoo.*"]) + list(ZOO_DATA),
    package_dir=ZOO_DATA,
    package_data={
        "codeczoo": ["samples/*.png", "samples/*.txt", "samples/*.md"],
        "codeczoo._registry": ["README.md", "*/*.json", "*/*.safetensors"],
        "codeczoo._recipes": ["README.md", "*/*.yaml", "*/entropy/*.yaml"],
    },
)
