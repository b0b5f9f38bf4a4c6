"""Which Wasm proposals a module may use. The decoder and validator consult this."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .opcodes import Feature


@dataclass(frozen=True, slots=True)
class Features:
    sign_extension: bool = True
    multi_value: bool = True
    mutable_global: bool = True
    saturating_float_to_int: bool = True
    bulk_memory: bool = True
    # Not supported by the engine; present so the decoder can name what it refuses.
    reference_types: bool = False

    @classmethod
    def all(cls) -> Features:
        """Everything the engine supports (the default)."""
        return cls()

    @classmethod
    def mvp(cls) -> Features:
        return cls(False, False, False, False, False)

    def enables(self, feature: Feature) -> bool:
        return all(getattr(self, _FLAG_FIELD[f]) for f in _FLAG_FIELD if f & feature)

    def key(self) -> str:
        """A stable text form, used in cache keys."""
        return ",".join(f.name for f in fields(self) if getattr(self, f.name))


_FLAG_FIELD = {
    Feature.SIGN_EXTENSION: "sign_extension",
    Feature.MULTI_VALUE: "multi_value",
    Feature.MUTABLE_GLOBAL: "mutable_global",
    Feature.SATURATING_FLOAT_TO_INT: "saturating_float_to_int",
    Feature.BULK_MEMORY: "bulk_memory",
}
