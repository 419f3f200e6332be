"""AffectNet+ loading script for ``datasets`` 2.14 to 3.6 (scripts are refused from ``datasets`` 4 on).

Usage, with the ``affectnetplus-hf`` package installed in the same environment::

    from datasets import load_dataset

    ds = load_dataset(
        "path/to/loading_script/affectnet_plus.py",
        "easy",                       # all (default), easy, challenging, difficult, unlabeled
        data_dir="/data/AffectNet+",  # the folder the licensed release was extracted into
        trust_remote_code=True,       # datasets >= 2.16; leave it out on 2.14 / 2.15
    )

This file holds no parsing code and no schema: the builder class below is the
package's :class:`affectnetplus_hf.release.builder.AffectNetPlus`, so the configs, splits,
features and rows are exactly those of the builder and the Parquet export.

With ``datasets`` 4 or newer, ``load_dataset`` refuses every ``.py`` script before
reading it (``RuntimeError: Dataset scripts are no longer supported``); use the
builder or the Parquet export instead (see ``_DATASETS_4_MESSAGE`` below, which this
file raises when it is imported there).
"""

# The imports of the package are indented on purpose: `datasets` scans a script's
# top-level `import x` lines and would answer a missing package with its own
# "pip install affectnetplus_hf" hint, which names no installable thing. Indented
# imports are ours to check, with an install message that works.
import datasets

_DATASETS_4_MESSAGE = """\
loading_script/affectnet_plus.py is for datasets 2.14 to 3.6, and this environment has datasets {version}:
datasets 4 and newer no longer run loading scripts. Load AffectNet+ with the package instead:

  * the builder (reads the raw release, same configs, splits and features as this script):
        from affectnetplus_hf import AffectNetPlus
        builder = AffectNetPlus(config_name="all", data_dir="/data/AffectNet+")
        builder.download_and_prepare()
        ds = builder.as_dataset()

  * or the Parquet export, which datasets loads without any code (4+ and the old versions alike):
        affectnetplus export /data/AffectNet+ ./affectnet_plus
        ds = datasets.load_dataset("./affectnet_plus", "all")

(configs: all, easy, challenging, difficult, unlabeled; see docs/compatibility.md in the package repository).
"""

_INSTALL_MESSAGE = """\
loading_script/affectnet_plus.py needs the affectnetplus-hf package installed in this environment
(the script only wraps its builder). Install it from a checkout or a built wheel, for example:

    pip install /path/to/affectnetplus-hf          # the repository folder (non-editable)
    pip install affectnetplus_hf-<version>-py3-none-any.whl

then run load_dataset(...) again. ({error})
"""


def _datasets_major(version: str) -> int:
    try:
        return int(version.split(".", 1)[0])
    except ValueError:  # an odd local build: let the import below decide
        return 0


if _datasets_major(datasets.__version__) >= 4:
    raise RuntimeError(_DATASETS_4_MESSAGE.format(version=datasets.__version__))

try:
    import affectnetplus_hf.release.builder as _builder
except ModuleNotFoundError as error:
    if error.name is None or error.name.split(".")[0] != "affectnetplus_hf":
        raise  # the package is there but one of its own dependencies is not: say which
    raise ImportError(_INSTALL_MESSAGE.format(error=error)) from error


class AffectNetPlus(_builder.AffectNetPlus):
    """AffectNet+ from ``data_dir``: the package builder, seen by ``load_dataset`` as this script's class.

    Configs ``all`` (default; splits train and validation), ``easy``, ``challenging``,
    ``difficult`` (same splits, one subset each) and ``unlabeled`` (split train);
    features ``affectnetplus_hf.FEATURES``. Config overrides such as ``on_bad="error"``
    are passed as keyword arguments to ``load_dataset``.
    """


if __name__ == "__main__":
    print(__doc__)
