"""Datasets for ChangeVG: ChangeIMTI JSON, LEVIR-CC/MCI, and labels from change masks."""

from changevg.data.annotate import TileAnnotation, annotate_mask
from changevg.data.changeimti import (
    DatasetError,
    Record,
    Turn,
    read_changeimti,
    record_to_json,
    write_changeimti,
)
from changevg.data.pairs import (
    PairRecord,
    pairs_from_records,
    read_change_type,
    read_levir_cc,
    read_mask,
    write_change_type,
    write_mask,
)

__all__ = [
    "DatasetError",
    "PairRecord",
    "Record",
    "TileAnnotation",
    "Turn",
    "annotate_mask",
    "pairs_from_records",
    "read_change_type",
    "read_changeimti",
    "read_levir_cc",
    "read_mask",
    "record_to_json",
    "write_change_type",
    "write_changeimti",
    "write_mask",
]
