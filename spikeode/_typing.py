"""Annotation aliases shared by the modules (checked at run time in the tests, by
jaxtyping's import hook with beartype)."""

from jaxtyping import ArrayLike, Real

# A real number, such as a time: a Python int or float, a NumPy or JAX scalar, a 0-d
# array (a tracer inside `jit`). (jaxtyping's `ScalarLike` also admits complex numbers;
# a plain `float` annotation would refuse ints and arrays.)
RealScalarLike = Real[ArrayLike, ""]
