"""Acceptance in a real browser: `mlflow server` on a finished training run, opened in headless
Chromium (Debian's, driven by Playwright): the run list (the address the summary prints) shows
the parent run by what it trained with headline metric columns, every plot renders as an
image, Optuna's interactive HTML draws its charts, and the parent run's overview lists the
trading metrics.

Set ASHARE_UI_SCREENSHOTS=docs/img to keep the screenshots (README uses them)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from ashare_autotune.tracking import experiment
from tests.conftest import ROOT, TrainedModel
from tests.test_reports import PLOTS
from tests.test_serving import _free_port, _stop, _wait_until_up

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TRADING_METRICS = (
    "test_topk_precision_mean",
    "test_rank_ic_mean",
    "test_mean_fwd_return_picks",
    "test_mean_fwd_return_universe",
    "test_hit_rate_up",
    "test_hit_rate_down",
    "test_picks_per_day",
)
PNG_PLOTS = sorted(name for name in PLOTS if name.endswith(".png"))
# An <img> showing the artifact: a loaded blob of the PNG's width, laid out and visible.
VISIBLE_IMAGE = """w => [...document.images].some(i => i.src.startsWith('blob:') && i.complete
    && i.naturalWidth === w && i.offsetParent !== null && i.getBoundingClientRect().height > 50
    && getComputedStyle(i).visibility !== 'hidden' && getComputedStyle(i).opacity !== '0')"""
TIMEOUT_MS = 30_000
FIRST_PAGE_MS = 180_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.needs_chromium,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (Debian: apt-get install chromium; .ci/run does it)",
    ),
]


@pytest.fixture
def ui_url(trained_model: TrainedModel, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` on the trained model's store, on a free loopback port."""
    port = _free_port()
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--backend-store-uri", trained_model.tracking_uri, "--workers", "1"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url, log, path="/health")
        yield url
    finally:
        _stop(proc)


def _png_width(path: str) -> int:
    with open(path, "rb") as f:
        header = f.read(24)
    return struct.unpack(">I", header[16:20])[0]


def _keep(shot: Path) -> None:
    target = os.environ.get("ASHARE_UI_SCREENSHOTS")
    if target:
        dest = Path(target) if Path(target).is_absolute() else ROOT / target
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / shot.name)


def test_mlflow_ui_renders_the_plots_and_shows_the_trading_metrics(
    ui_url: str, trained_model: TrainedModel, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    mlflow.set_tracking_uri(trained_model.tracking_uri)
    run = mlflow.get_run(trained_model.result.run_id)
    page_url = f"{ui_url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            _check_run_list(page, ui_url, run, tmp_path)
            _check_overview(page, page_url, run, tmp_path)
            for name in PNG_PLOTS:
                _check_png(page, page_url, run, name, tmp_path)
            _check_interactive_html(page, page_url, tmp_path)
        finally:
            browser.close()


def _close_assistant(page) -> None:  # noqa: ANN001 (playwright Page)
    close = page.locator("button[aria-label='Close']")
    if close.count():
        close.first.click()


def _check_run_list(page, ui_url: str, run: mlflow.entities.Run, tmp_path: Path) -> None:  # noqa: ANN001
    """The summary's address: the model-training pages, the parent run by its name, a column
    per headline metric with the run's value."""
    port = int(ui_url.rsplit(":", 1)[1])
    page.goto(experiment.view_url(run.info.experiment_id, port), wait_until="load")
    # the first page of a fresh server took 59 s on the busy 2-core machine
    page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=FIRST_PAGE_MS)
    _close_assistant(page)
    page.get_by_role("columnheader", name="test_auc", exact=True).first.wait_for()
    value = run.data.metrics["test_auc"]
    assert page.get_by_text(str(value), exact=True).count() >= 1, f"test_auc={value} not shown"
    text = page.inner_text("body")
    assert "Traces" in text and "Model registry" in text  # the model-training pages
    assert "Sessions" not in text and "Prompts" not in text  # not the GenAI ones
    shot = tmp_path / "ui_run_list.png"
    page.screenshot(path=str(shot))
    _keep(shot)


def _check_overview(page, page_url: str, run: mlflow.entities.Run, tmp_path: Path) -> None:  # noqa: ANN001
    page.goto(page_url, wait_until="load")
    search = page.get_by_placeholder("Search metrics")
    search.wait_for()
    _close_assistant(page)
    for key in TRADING_METRICS:  # typed into the metrics search, as a person would
        search.fill(key)
        page.get_by_text(key, exact=True).first.wait_for()
        value = run.data.metrics[key]
        shown = page.get_by_text(str(value), exact=True)
        assert shown.count() >= 1, f"{key}={value} not shown on the run page"
    text = page.inner_text("body")
    assert "Datasets" in text and f"train {run.data.tags['split_train_start']}" in text
    search.fill("test_")
    shot = tmp_path / "ui_run_overview.png"
    page.screenshot(path=str(shot), full_page=True)
    _keep(shot)


def _check_png(page, page_url: str, run: mlflow.entities.Run, name: str, tmp_path: Path) -> None:  # noqa: ANN001
    if "/artifacts" not in page.url:
        page.goto(f"{page_url}/artifacts/plots/{name}", wait_until="load")
    else:  # as a person would: click the file in the artifact tree
        page.get_by_text(name, exact=True).first.click()
    page.get_by_text(f"plots/{name}", exact=True).first.wait_for()
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path=f"plots/{name}"
    )
    # the artifact viewer shows the file as a blob image: rendered, at the file's own width
    page.wait_for_function(VISIBLE_IMAGE, arg=_png_width(local))
    if name in ("pr_curve.png", "precision_recall_vs_threshold.png", "calibration.png"):
        shot = tmp_path / f"ui_{name}"
        page.screenshot(path=str(shot))
        _keep(shot)


def _check_interactive_html(page, page_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    page.get_by_text("optuna_study.html", exact=True).first.click()
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        frames = [f for f in page.frames if f is not page.main_frame]
        if any(f.locator(".main-svg").count() >= 2 for f in frames):
            break
        page.wait_for_timeout(500)
    else:
        pytest.fail("optuna_study.html: no plotly chart drawn in the artifact viewer")
    shot = tmp_path / "ui_optuna_study_html.png"
    page.screenshot(path=str(shot))
    _keep(shot)
