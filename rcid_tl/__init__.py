"""rcid_tl: does a distilled student compute its answers the way its teacher does? Hook-level tools to find out.

The names below are the library's front door (`import rcid_tl as rt; rt.run_patch(...)`). Each is imported from its
module on first use, so `import rcid_tl` stays instant and loads neither torch nor transformers.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rcid-tl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

# public name -> the module that defines it, or "module:name" where the public name differs (imported lazily)
_LAZY = {
    # models and tasks
    "load_model": "rcid_tl.models",
    "build_student_for": "rcid_tl.models",
    "StudentConfig": "rcid_tl.models",
    "save_hf_model": "rcid_tl.models",
    "ModelSpec": "rcid_tl.sweeps.common",
    "TaskSpec": "rcid_tl.tasks.registry",
    "build_task": "rcid_tl.tasks.registry",
    "metric_for": "rcid_tl.metrics",
    # the sweeps behind `rcid-tl patch`, `knockout`, `checkpoints` and `consistency`
    "PatchConfig": "rcid_tl.sweeps.patch",
    "run_patch": "rcid_tl.sweeps.patch",
    "KnockoutConfig": "rcid_tl.sweeps.knockout",
    "run_knockout": "rcid_tl.sweeps.knockout",
    "KnockoutMethod": "rcid_tl.interventions.knockout:Method",
    "SelectionConfig": "rcid_tl.consistency.run",
    "CheckpointsConfig": "rcid_tl.consistency.run",
    "run_checkpoints": "rcid_tl.consistency.run",
    "ConsistencyConfig": "rcid_tl.consistency.run",
    "run_consistency": "rcid_tl.consistency.run",
    # hook-level Read and Write
    "Site": "rcid_tl.hooks.names",
    "PatchSite": "rcid_tl.interventions.write",
    "patch_sites": "rcid_tl.interventions.write",
    "causal_imprint": "rcid_tl.interventions.read",
    # saved results back into their objects
    "load_result": "rcid_tl.results",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'rcid_tl' has no attribute {name!r}")
    module, _, attribute = _LAZY[name].partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
