"""``adamkit playground`` end to end: the real command, Debian's headless Chromium, Selenium.

The test starts the server as ``adamkit playground --no-browser --port 0``, moves sliders and
toggles with key presses and clicks, checks that the drawn paths change and that the paths
and the numbers shown for a step are adamkit.numpy's, trains the logistic regression live,
switches to 中文, and saves the README's screenshots as docs/figures/playground-*.png. The
server is stopped with SIGINT (Ctrl-C) and must exit 0; the browser is quit.
"""

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flask")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

import adamkit.numpy
from adamkit.compare import numpy_training
from adamkit.compare.tasks import LEARNING_RATES, TASKS, digits_split
from adamkit.playground.settings import OPTIMIZERS
from adamkit.trajectories import FUNCTIONS

FIGURES = Path(__file__).resolve().parents[2] / "docs" / "figures"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_SECONDS = 90
WINDOW = (1400, 1800)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (scripts/setup installs them "
           "with apt-get; without root or network they cannot be)",
)


@pytest.fixture(scope="module")
def server():
    """The URL of a running ``adamkit playground``; stopped with Ctrl-C (SIGINT) afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "adamkit.cli.main", "playground", "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/\?lang=en", line)
        assert match, f"no URL in {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        yield match.group(0)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            status = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("adamkit playground did not stop on SIGINT")
        assert status == 0, process.stderr.read()
        assert "stopped" in process.stdout.read()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def settled(browser):
    """Wait until the page has drawn everything of the last change; fail on a shown error."""
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda driver: driver.execute_script("return document.body.dataset.state") in ("ready", "error")
    )
    assert browser.execute_script("return document.body.dataset.state") == "ready", \
        browser.find_element(By.ID, "error").text


def drawn_paths(browser):
    """The paths plotly drew on the contour plot, by optimizer name."""
    traces = browser.execute_script(
        "return document.getElementById('contour-plot').data"
        ".filter(t => t.meta).map(t => [t.meta, t.x, t.y]);"
    )
    return {name: np.array([xs, ys], dtype=float).T for name, xs, ys in traces}


def numpy_adam(steps, t=None, **arguments):
    """Adam of adamkit.numpy on Rosenbrock from its start: the path, and the state after step t."""
    function = FUNCTIONS["rosenbrock"]
    point = np.array(function.start)
    optimizer = adamkit.numpy.Adam([point], lr=function.lrs["adam"], **arguments)
    path, states = [point.copy()], []
    for _ in range(steps):
        optimizer.step([function.gradient(point)])
        path.append(point.copy())
        states.append({key: np.array(value, dtype=float) for key, value in optimizer.state[0].items()})
    return np.array(path), states


def pixels(browser, points):
    """Where ``points`` (data coordinates) are on the contour plot, in pixels from its corner."""
    size, x_range, y_range = browser.execute_script(
        "const l = document.getElementById('contour-plot')._fullLayout;"
        "return [l._size, l.xaxis.range, l.yaxis.range];"
    )
    return np.stack([
        size["l"] + (points[:, 0] - x_range[0]) / (x_range[1] - x_range[0]) * size["w"],
        size["t"] + (y_range[1] - points[:, 1]) / (y_range[1] - y_range[0]) * size["h"],
    ], axis=1)


def click_path_point(browser, name, index):
    """Click with the mouse on point ``index`` of the path of optimizer ``name``."""
    plot = browser.find_element(By.ID, "contour-plot")
    [(x, y)] = pixels(browser, drawn_paths(browser)[name][[index]])
    ActionChains(browser).move_to_element_with_offset(
        plot, round(x - plot.size["width"] / 2), round(y - plot.size["height"] / 2)
    ).click().perform()


def press(browser, element_id, key, times):
    element = browser.find_element(By.ID, element_id)
    element.send_keys(key * times)


def shown(browser, key, coordinate):
    """The number the inside-one-step table shows for ``key`` and a coordinate."""
    text = browser.find_element(By.CSS_SELECTOR, f'b[data-key="{key}"][data-coord="{coordinate}"]').text
    return float(text)


def test_the_playground_in_a_real_browser(server, browser):
    browser.get(server)
    settled(browser)
    first = drawn_paths(browser)
    assert set(first) == set(OPTIMIZERS)
    expected, _ = numpy_adam(500)
    np.testing.assert_array_equal(first["adam"], expected)

    # β₁ from 0.9 down to 0.8: Adam's path changes, and is adamkit.numpy's with β₁ = 0.8.
    press(browser, "beta1", Keys.ARROW_LEFT, 100)
    settled(browser)
    moved = drawn_paths(browser)
    assert not np.allclose(moved["adam"], first["adam"])
    np.testing.assert_array_equal(moved["sgd"], first["sgd"])  # β₁ is not SGD's
    expected, _ = numpy_adam(500, betas=(0.8, 0.999))
    np.testing.assert_array_equal(moved["adam"], expected)

    # Weight decay 0.05, decoupled, and AMSGrad; then four steps forward, inside Adam's step 5.
    press(browser, "weight-decay", Keys.ARROW_RIGHT, 5)
    Select(browser.find_element(By.ID, "decay")).select_by_value("decoupled")
    browser.find_element(By.ID, "amsgrad").click()
    settled(browser)
    for _ in range(4):
        browser.find_element(By.ID, "step-forward").click()
        settled(browser)
    assert browser.find_element(By.ID, "step-t").text == "5"
    arguments = dict(betas=(0.8, 0.999), weight_decay=0.05, decoupled_weight_decay=True, amsgrad=True)
    path, states = numpy_adam(500, **arguments)
    np.testing.assert_array_equal(drawn_paths(browser)["adam"], path)
    state = states[4]
    bias_correction1, bias_correction2 = 1 - 0.8**5, 1 - 0.999**5
    expected = {
        "theta_before": path[4], "theta": path[5], "update": path[4] - path[5],
        "exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"],
        "max_exp_avg_sq": state["max_exp_avg_sq"],
        "exp_avg_hat": state["exp_avg"] / bias_correction1,
        "exp_avg_sq_hat": state["max_exp_avg_sq"] / bias_correction2,
        "decay": 0.02 * 0.05 * path[4],
        "bias_correction1": [bias_correction1] * 2, "bias_correction2": [bias_correction2] * 2,
    }
    for key, values in expected.items():
        for coordinate in (0, 1):
            assert shown(browser, key, coordinate) == pytest.approx(values[coordinate], rel=1e-5), key

    FIGURES.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(FIGURES / "playground-en.png"))

    # With Adam alone, a mouse click on a point of its path looks inside that step: the
    # point clicked, or one less than 3 pixels from it on the screen.
    for name in OPTIMIZERS:
        if name != "adam":
            browser.find_element(By.ID, f"optimizer-{name}").click()
    settled(browser)
    assert list(drawn_paths(browser)) == ["adam"]
    click_path_point(browser, "adam", 100)
    WebDriverWait(browser, WAIT_SECONDS).until(lambda driver: driver.find_element(By.ID, "step-t").text != "5")
    settled(browser)
    chosen = int(browser.find_element(By.ID, "step-t").text)
    on_screen = pixels(browser, path[[100, chosen]])
    assert np.hypot(*(on_screen[0] - on_screen[1])) < 3
    state = states[chosen - 1]
    for coordinate in (0, 1):
        assert shown(browser, "theta", coordinate) == pytest.approx(path[chosen][coordinate], rel=1e-5)
        assert shown(browser, "exp_avg", coordinate) == pytest.approx(state["exp_avg"][coordinate], rel=1e-5)

    # The live task: Adam alone, its loss curve that of adamkit compare's NumPy backend.
    for name in ("sgd", "adagrad", "rmsprop"):
        browser.find_element(By.ID, f"logreg-{name}").click()
    browser.find_element(By.ID, "logreg-run").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda driver: driver.execute_script("return document.body.dataset.logreg") in ("done", "error"))
    losses = browser.execute_script("return document.getElementById('logreg-loss').data[0].y")
    _, run = numpy_training.train(TASKS["logreg"], "adam", LEARNING_RATES["adam"]["logreg"], digits_split(0),
                                  seed=0, epochs=TASKS["logreg"].epochs)
    np.testing.assert_allclose(losses, run.train_loss, rtol=1e-12)

    # 中文: every label switches, the numbers stay.
    browser.find_element(By.ID, "lang-zh").click()
    assert browser.execute_script("return document.documentElement.lang") == "zh-CN"
    assert browser.find_element(By.CSS_SELECTOR, '[data-i18n="bias_correction"]').text == "偏差修正"
    assert browser.find_element(By.CSS_SELECTOR, '[data-i18n="lr"]').text == "学习率"
    labels = browser.execute_script(
        "return [...document.querySelectorAll('[data-i18n]')].map(e => [e.dataset.i18n, e.textContent]);")
    zh = browser.execute_script("return STRINGS.zh")
    assert all(text == zh[key] for key, text in labels)
    row_label = browser.find_element(By.CSS_SELECTOR, 'tr[data-key="exp_avg"] td').text
    assert "一阶矩" in row_label
    assert shown(browser, "exp_avg", 0) == pytest.approx(state["exp_avg"][0], rel=1e-5)
    assert "lang=zh" in browser.current_url
    titles = browser.execute_script(
        "return ['pair-bias-on', 'pair-decay-decoupled'].map(id => document.getElementById(id).layout.title.text);")
    assert titles == ["有偏差修正", "AdamW（解耦）, λ = 0.05"]
    browser.save_screenshot(str(FIGURES / "playground-zh.png"))
