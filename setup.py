"""Build hook: ship the top-level ``configs/`` inside the wheel as ``semiad_cli/configs/``.

``configs/`` stays the one source: an editable install reads it from the checkout, a
wheel carries a copy, so ``semiad`` runs from any folder (``cli.CONFIG_DIR`` looks in
both places). Everything else about the package is declared in ``pyproject.toml``.
"""

from setuptools import find_namespace_packages, find_packages, setup

# Every folder of configs/ (hydra/launcher, dataset, ...) as a data-only package under semiad_cli.configs.
CONFIG_PACKAGES = ["semiad_cli.configs", *(f"semiad_cli.configs.{p}" for p in find_namespace_packages(where="configs"))]

# hydra/launcher=stacked: Hydra takes launchers only from the hydra_plugins namespace package.
PLUGIN_PACKAGES = ["hydra_plugins.semiad_stacked_launcher"]

setup(
    packages=[*find_packages(include=["semiad_cli", "semiad_cli.*"]), *CONFIG_PACKAGES, *PLUGIN_PACKAGES],
    package_dir={"semiad_cli.configs": "configs"},
    package_data={p: ["*.yaml"] for p in CONFIG_PACKAGES},
)
