"""Runtime shape checks (jaxtyping + beartype) on the multi-teacher package, installed before the tests import it."""

import jaxtyping

jaxtyping.install_import_hook(["rcid_tl.multiteacher"], "beartype.beartype")
