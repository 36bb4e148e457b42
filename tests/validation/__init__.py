"""Runtime shape checks (jaxtyping + beartype) on the validation package, installed before the tests import it."""

import jaxtyping

jaxtyping.install_import_hook(["rcid_tl.validation"], "beartype.beartype")
