"""Read, Write and knockout: the interventions, as hook-function factories applied through the bridge."""
