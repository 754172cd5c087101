"""Build hook: the hot-path modules compiled with Cython (the same Python source, about
1.5-2x faster where the gateway spends its time: the profile validator, the renderer, the
HL7 v2 tokenizer and mapping engine, the pipeline stages). Set ``YIKATONG_COMPILE=0`` to
install pure Python; a compiled module older than its source is never used
(``gateway/compiled.py``)."""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_ext import build_ext


class ParallelBuildExt(build_ext):
    """The C compiler on every core (the modules are independent)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

COMPILED = [
    "adapters/hl7v2/engine.py", "adapters/hl7v2/functions.py", "adapters/paths.py",
    "conformance/bindings.py", "conformance/constraints.py", "conformance/dispatch.py",
    "conformance/fields.py",
    "conformance/invariants.py", "conformance/memo.py", "conformance/objects.py",
    "conformance/patterns.py", "conformance/primitives.py", "conformance/slicing.py",
    "conformance/validator.py",
    "gateway/api/ingest.py", "gateway/batcher.py", "gateway/envelope.py",
    "gateway/hl7/ack.py", "gateway/hl7/charset.py", "gateway/hl7/escape.py",
    "gateway/hl7/listener.py", "gateway/hl7/message.py", "gateway/hl7/mllp.py",
    "gateway/identifiers.py", "gateway/identity/empi.py", "gateway/insurance/visits.py",
    "gateway/jsonio.py", "gateway/orgs.py", "gateway/pipeline.py", "gateway/redis_async.py",
    "gateway/render/fhir.py", "gateway/stages/identify.py", "gateway/stages/ingest_v2.py",
    "gateway/stages/parse.py", "gateway/stages/parse_v2.py", "gateway/stages/render.py",
    "gateway/stages/route.py", "gateway/stages/translate.py", "gateway/stages/validate.py",
    "gateway/store.py", "terminology/local_maps.py", "terminology/translate.py",
]


def extensions() -> list:
    if os.environ.get("YIKATONG_COMPILE", "1") == "0":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    # annotation_typing off: annotations stay hints, so the compiled code behaves exactly
    # as the source does (a `-> list` does not become a type check)
    return cythonize(COMPILED, nthreads=os.cpu_count() or 1, quiet=True,
                     compiler_directives={"language_level": 3, "annotation_typing": False})


setup(ext_modules=extensions(), cmdclass={"build_ext": ParallelBuildExt})
