"""Table nodes the module shows: per-segment volumes with the initial-vs-refined Dice, and clinical indices."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np
import vtk

from CoopSegLib.evaluation.indices import ClinicalIndices, compare_indices, voxel_volume_ml
from CoopSegMRML.terminology import SLICER_STRUCTURES


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two masks; NaN when both are empty (no overlap to speak of)."""
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return 2.0 * int(np.count_nonzero(a & b)) / total if total else math.nan


def _column(table, array_class, name: str, values: Sequence) -> None:
    column = array_class()
    column.SetName(name)
    for value in values:
        column.InsertNextValue(value)
    table.AddColumn(column)


def fill_table(table_node, columns: List[tuple], units: Optional[dict] = None) -> None:
    """Replace the table node's content with ``columns``: (name, values) pairs, text or numbers."""
    table = table_node.GetTable()
    table.Initialize()
    for name, values in columns:
        text = any(isinstance(v, str) for v in values)
        _column(table, vtk.vtkStringArray if text else vtk.vtkDoubleArray, name, values)
    for name, unit in (units or {}).items():
        table_node.SetColumnUnitLabel(name, unit)
    table_node.Modified()


def segment_volume_rows(initial: np.ndarray, refined: np.ndarray, affine: np.ndarray) -> List[tuple]:
    """(segment name, initial mL, refined mL, Dice initial vs refined) for each structure."""
    voxel = voxel_volume_ml(affine)
    rows = []
    for structure in SLICER_STRUCTURES:
        a, b = initial == structure.code, refined == structure.code
        rows.append((structure.name, np.count_nonzero(a) * voxel, np.count_nonzero(b) * voxel, dice(a, b)))
    return rows


def fill_segment_volume_table(table_node, rows: List[tuple]) -> None:
    names = ("Segment", "Initial (mL)", "Refined (mL)", "Dice initial vs refined")
    fill_table(table_node, [(name, [row[i] for row in rows]) for i, name in enumerate(names)])


def fill_clinical_index_table(table_node, indices: ClinicalIndices, leading: Sequence[tuple] = ()) -> None:
    """Index, value and unit of each clinical index; ``leading``: (description, value, unit) rows put first (a
    cine's ED and ES frames)."""
    rows = [*leading, *((row.description, row.value, row.unit) for row in compare_indices(indices))]
    fill_table(table_node, [("Index", [row[0] for row in rows]), ("Value", [row[1] for row in rows]),
                            ("Unit", [row[2] for row in rows])])


def table_rows(table_node) -> List[tuple]:
    """The table's rows as Python values (numbers as floats), for tests and pictures."""
    table = table_node.GetTable()
    rows = []
    for r in range(table.GetNumberOfRows()):
        row = []
        for c in range(table.GetNumberOfColumns()):
            column = table.GetColumn(c)
            row.append(column.GetValue(r) if isinstance(column, vtk.vtkStringArray) else float(column.GetValue(r)))
        rows.append(tuple(row))
    return rows
