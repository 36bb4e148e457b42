"""Sampling defaults of the tasks, in a module with no imports so that the command line's help can show them without
loading the library."""

DEFAULT_N = 100  # examples sampled for ioi and greater-than when no count is given (the TinyStories tasks then
# take every prompt of their split, a pairs file every row)
