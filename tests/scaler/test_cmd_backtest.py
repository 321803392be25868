"""`helios backtest` over CSV files: the JSON rows, the plots, and clear errors."""

import json

import numpy as np

from helios.adapters.file import read_csv
from helios.engine.align import align
from helios.engine.backtest import backtest
from helios.scaler.cli import main

from ..helpers import write_trace

COLUMNS = {"series", "model", "horizon_steps", "mae", "mape", "smape", "mase", "coverage_80", "pinball_90",
           "fit_seconds", "predict_seconds"}


def trace(tmp_path, name="web.csv", n=2000, seed=0):
    rng = np.random.default_rng(seed)
    values = 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 3, n)
    return write_trace(tmp_path / name, values, end=1_700_000_000)


def test_json_rows_have_the_documented_columns_and_match_the_engine(tmp_path, capsys):
    path = trace(tmp_path)
    assert main(["backtest", str(path), "--models", "naive,baseline", "--origins", "4", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["naive", "baseline"] and all(set(r) == COLUMNS for r in rows)
    assert all(r["series"] == "web.csv" and r["horizon_steps"] == 6 for r in rows)
    direct = backtest(align(read_csv(str(path)), 300), "baseline", 6, 4, 2016, spacing=36)
    assert rows[1]["mase"] == direct.mase and rows[1]["coverage_80"] == direct.coverage_80


def test_a_folder_is_every_csv_in_it_and_plots_are_pngs(tmp_path, capsys):
    trace(tmp_path, "a.csv")
    trace(tmp_path, "b.csv", seed=1)
    plots = tmp_path / "plots"
    assert main(["backtest", str(tmp_path), "--models", "naive", "--origins", "2", "--plot", str(plots)]) == 0
    out = capsys.readouterr().out
    assert out.count("| a.csv | naive |") == 1 and out.count("| b.csv | naive |") == 1
    for name in ("a.png", "b.png"):
        content = (plots / name).read_bytes()
        assert content.startswith(b"\x89PNG") and len(content) > 10_000


def test_the_horizon_is_counted_in_steps_of_the_series_own_grid(tmp_path, capsys):
    values = np.arange(400.0)
    path = write_trace(tmp_path / "halfhour.csv", values, end=1_700_000_000, step=1800)
    assert main(["backtest", str(path), "--models", "naive", "--horizon", "1h", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["horizon_steps"] == 2


def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys):
    assert main(["backtest", str(trace(tmp_path)), "--models", "naive,arima"]) == 2
    assert "--models: unknown arima" in capsys.readouterr().err
    assert main(["backtest", str(tmp_path / "nope.csv")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["backtest", str(tmp_path), "--horizon", "soon"]) == 2
    assert "'soon' is not a duration" in capsys.readouterr().err
