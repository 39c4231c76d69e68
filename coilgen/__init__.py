"""coilgen: generated COIL 2000 test data in every raw layout (the real rows are never shipped)."""

from coilgen.generate import FAULTS, FILE_FAULTS, LAYOUTS, ROW_FAULTS, Generated, generate

__all__ = ["FAULTS", "FILE_FAULTS", "LAYOUTS", "ROW_FAULTS", "Generated", "generate"]
