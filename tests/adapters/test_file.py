import math

import numpy as np
import pytest

from helios.adapters.file import FileParams, FileSource, read_csv
from helios.engine.errors import BadQuery, NoData, SourceUnavailable

from .contract import ABSENT, LOAD, ContractTarget, SourceContract, canonical_samples, recent_origin


@pytest.fixture(scope="module")
def contract(tmp_path_factory):
    """One CSV per canonical metric that is one series: LOAD's samples (the NaN one an empty value, the
    repeated one twice), and ABSENT's header alone."""
    folder = tmp_path_factory.mktemp("contract")
    origin = recent_origin()
    lines = {LOAD: ["timestamp,value"], ABSENT: ["timestamp,value"]}
    for metric, _labels, ts, value in canonical_samples(origin):
        if metric in lines:
            lines[metric].append(f"{ts},{'' if math.isnan(value) else value}")
    for metric, rows in lines.items():
        (folder / f"{metric}.csv").write_text("\n".join(rows) + "\n")
    return ContractTarget(FileSource(), origin, lambda metric: FileParams(path=str(folder / f"{metric}.csv")))


class TestFileContract(SourceContract):
    # Every SourceContract case applies. AdapterContract's do not: a file is served as it is written
    # (the scaler aligns it, engine.align), holds one series and has no standard metrics.
    pass


def write(tmp_path, text, name="trace.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_reads_iso_and_unix_timestamps_and_empty_values(tmp_path):
    path = write(tmp_path, "timestamp,value\n2024-01-01T00:00:00Z,1.5\n1704067500,\n2024-01-01T00:10:00,3\n")
    s = read_csv(path)
    assert s.timestamps.tolist() == [1704067200, 1704067500, 1704067800]
    assert s.values[0] == 1.5 and np.isnan(s.values[1]) and s.values[2] == 3.0


def test_unsorted_rows_are_sorted_and_duplicate_timestamps_keep_the_last(tmp_path):
    s = read_csv(write(tmp_path, "timestamp,value\n600,3\n0,1\n300,2\n300,9\n"))
    assert s.timestamps.tolist() == [0, 300, 600] and s.values.tolist() == [1, 9, 3]


@pytest.mark.parametrize(
    "text, message",
    [
        ("time,val\n0,1\n", "line 1 must be the header 'timestamp,value'"),
        ("timestamp,value\n0,1\nyesterday,2\n", "line 3: timestamp 'yesterday' is neither ISO-8601 nor Unix"),
        ("timestamp,value\n0,abc\n", "line 2: could not convert"),
        ("timestamp,value\n0,1,2\n", "line 2: expected 2 columns, got 3"),
        ("timestamp,value\n0,inf\n", "line 2: value must be finite"),
    ],
)
def test_malformed_files_are_bad_queries_naming_the_line(tmp_path, text, message):
    with pytest.raises(BadQuery, match=message):
        read_csv(write(tmp_path, text))


def test_a_missing_file_is_an_outage_not_a_crash(tmp_path):
    with pytest.raises(SourceUnavailable, match="no such file"):
        read_csv(str(tmp_path / "absent.csv"))


def test_fetch_returns_only_the_requested_window(tmp_path):
    path = write(tmp_path, "timestamp,value\n" + "".join(f"{t},{t // 300}\n" for t in range(0, 3000, 300)))
    s = FileSource().fetch(FileParams(path=path), start=600, end=1500, step=300)
    assert s.timestamps.tolist() == [600, 900, 1200, 1500]


def test_fetch_outside_the_file_span_is_no_data(tmp_path):
    path = write(tmp_path, "timestamp,value\n0,1\n300,2\n")
    with pytest.raises(NoData, match="no samples between"):
        FileSource().fetch(FileParams(path=path), start=10_000, end=20_000, step=300)


def test_replay_maps_the_trace_onto_the_wall_clock(tmp_path):
    # A 4-step trace (period 1200 s) read at any later time repeats itself.
    path = write(tmp_path, "timestamp,value\n0,10\n300,20\n600,30\n900,40\n")
    s = FileSource().fetch(FileParams(path=path, replay=True), start=12_000, end=13_200, step=300)
    assert s.timestamps.tolist() == [12_000, 12_300, 12_600, 12_900, 13_200]
    assert s.values.tolist() == [10, 20, 30, 40, 10]
