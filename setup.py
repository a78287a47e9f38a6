"""Builds adamkit's optional C extension, the fused CPU kernels; all metadata is in pyproject.toml.

The extension is optional: without a working C compiler the install still succeeds and adamkit
uses its reference backend (and says so once). It reads NumPy arrays through NumPy's C API, so
NumPy is a build requirement (pyproject.toml). OpenMP is used when the compiler accepts
``-fopenmp``; otherwise the kernels are built single-threaded.
"""

import os
import tempfile

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCES = [
    "csrc/module.c",
    "csrc/arguments.c",
    "csrc/views.c",
    "csrc/dense_entry.c",
    "csrc/sparse_entry.c",
    "csrc/quant8_entry.c",
    "csrc/plan_checks_objects.c",
    "csrc/plan_checks_arrays.c",
    "csrc/dispatch.c",
    "csrc/scalars.c",
    "csrc/cautious.c",
    "csrc/isa_scalar.c",
    "csrc/isa_avx2.c",
    "csrc/isa_avx512.c",
    "csrc/sparse.c",
    "csrc/row_sort.c",
    "csrc/quant8.c",
    "csrc/quant8_adam_avx512.c",
    "csrc/quant8_adam_avx2.c",
    "csrc/lamb.c",
    "csrc/adafactor.c",
    "csrc/adafactor_entry.c",
]
HEADERS = [
    "csrc/binding.h",
    "csrc/entry_points.h",
    "csrc/arguments.h",
    "csrc/views.h",
    "csrc/prefetch_objects.h",
    "csrc/kernels_api.h",
    "csrc/rule_list.h",
    "csrc/kernels_internal.h",
    "csrc/rules.h",
    "csrc/rules_schedule_free.h",
    "csrc/rules_lamb.h",
    "csrc/instantiate.h",
    "csrc/quant8.h",
    "csrc/quant8_adam_fused.h",
    "csrc/quant8_adam_fused_loop.h",
    "csrc/quant8_codec.h",
    "csrc/sparse.h",
    "csrc/row_sort.h",
    "csrc/adafactor.h",
    "csrc/adafactor_lanes.h",
]

# Bitwise agreement with adamkit/rules needs IEEE arithmetic in the written order: no FMA
# contraction, no fast-math. -fno-math-errno only lets sqrt compile to one instruction.
COMPILE_ARGS = ["-O3", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno"]
OPENMP_ARGS = ["-fopenmp"]


def _accepts_openmp(compiler):
    with tempfile.TemporaryDirectory() as directory:
        source = os.path.join(directory, "probe.c")
        with open(source, "w") as file:
            file.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            objects = compiler.compile([source], output_dir=directory, extra_postargs=OPENMP_ARGS)
            compiler.link_executable(
                objects, "probe", output_dir=directory, extra_postargs=OPENMP_ARGS
            )
        except Exception:  # any compiler or linker failure means no OpenMP
            return False
    return True


class BuildKernels(build_ext):
    def build_extension(self, ext):
        if _accepts_openmp(self.compiler):
            ext.extra_compile_args = COMPILE_ARGS + OPENMP_ARGS
            ext.extra_link_args = OPENMP_ARGS
        super().build_extension(ext)


setup(
    ext_modules=[
        Extension(
            "adamkit.kernels._native",
            sources=SOURCES,
            depends=HEADERS,
            include_dirs=["csrc", numpy.get_include()],
            extra_compile_args=COMPILE_ARGS,
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildKernels},
)
