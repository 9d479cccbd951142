"""Serving: `mlflow models serve` on the registered champion answers a real HTTP request with
the same probabilities and picks as the model loaded in-process, and refuses rows without a
feature column with the model's one-line reason as its whole message."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from ashare_autotune.config.schema import DataConfig
from ashare_autotune.data.loader import load_market
from ashare_autotune.modelling.feature_sets import build_feature_set
from tests.conftest import ROOT, TrainedModel

STARTUP_SECONDS = 90
SERVING_DOC = ROOT / "docs" / "registry-and-serving.md"


def serving_example() -> tuple[str, dict, dict]:
    """The serving section of docs/registry-and-serving.md: its text, the curl request's JSON
    body and the answer it shows (the test below checks a real answer has its form)."""
    doc = SERVING_DOC.read_text()
    section = doc[doc.index("## Serving") :]
    body = json.loads(re.search(r"-d '(\{.*?\})'", section, re.S).group(1))
    answer = json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))
    return section, body, answer


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(proc: subprocess.Popen, url: str, log: Path, path: str = "/ping") -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"server not up after {STARTUP_SECONDS}s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the server and the uvicorn workers it started (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _post_error(url: str, rows: pd.DataFrame) -> tuple[int, str]:
    """(HTTP status, message) of the server's error answer to a request of `rows`."""
    body = json.dumps({"dataframe_split": rows.to_dict(orient="split")}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())["message"]
    raise AssertionError("the request was answered, not refused")


@pytest.mark.slow
def test_mlflow_models_serve_answers_an_http_request(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    mlflow.set_tracking_uri(trained_model.tracking_uri)
    model = mlflow.pyfunc.load_model(trained_model.model_uri)
    meta = model.unwrap_python_model().meta
    market = load_market(DataConfig(n_stocks=40, n_days=300))
    features = build_feature_set(market, None, meta["features"])
    rows = features.loc[features["trade_date"] == features["trade_date"].max(), meta["features"]]
    rows = rows.astype(np.float64).head(8)
    expected = model.predict(rows)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "MLFLOW_TRACKING_URI": trained_model.tracking_uri,
        # mlflow starts `uvicorn` by name: find the one installed next to this interpreter.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", trained_model.model_uri]
    cmd += ["--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_up(proc, url, log)
        body = json.dumps({"dataframe_split": rows.to_dict(orient="split")}).encode()
        request = urllib.request.Request(
            f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        refused = _post_error(url, rows.drop(columns=[meta["features"][0]]))
    finally:
        _stop(proc)
    # a missing column: the reason in one line is the whole message (no echo of the rows)
    n = len(meta["features"])
    missing = (
        f"model input is missing feature column(s) '{meta['features'][0]}' (1 of the model's {n})"
    )
    assert refused == (400, missing)

    predictions = answer["predictions"]
    assert len(predictions) == len(rows)
    _, _, documented = serving_example()  # the docs show an answer of this form
    assert [set(p) for p in predictions] == [set(documented["predictions"][0])] * len(rows)
    got = np.array([p["probability"] for p in predictions])
    np.testing.assert_allclose(got, expected["probability"].to_numpy(), rtol=1e-6)
    assert [p["pick"] for p in predictions] == list(got >= meta["threshold"])
    assert proc.poll() is not None
