"""Which CSVs a path list names: the measuring commands' shared rule."""

import pytest

from helios.scaler.tools.traces import csv_files


def test_an_empty_folder_is_skipped_unless_every_folder_must_hold_files(tmp_path):
    full, empty = tmp_path / "full", tmp_path / "empty"
    full.mkdir()
    empty.mkdir()
    (full / "b.csv").write_text("timestamp,value\n")
    (full / "a.csv").write_text("timestamp,value\n")
    assert [f.name for f in csv_files([str(empty), str(full)])] == ["a.csv", "b.csv"]  # backtest, simulate
    with pytest.raises(ValueError, match="empty: no .csv files in this folder"):  # detect judges each file
        csv_files([str(empty), str(full)], every_folder=True)
    with pytest.raises(ValueError, match="no .csv files in"):
        csv_files([str(empty)])
    with pytest.raises(ValueError, match="missing: no such file or folder"):
        csv_files([str(tmp_path / "missing")])
