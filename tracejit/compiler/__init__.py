"""The compiler: fusion plan (plan.py), index maps (index.py), code generation
(codegen.py) and the module cache (build.py)."""
