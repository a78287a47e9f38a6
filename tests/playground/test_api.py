"""The playground's JSON API, through Flask's test client: its numbers are adamkit.numpy's, and
bad input gets a 4xx naming the field while the server keeps answering."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("flask")

import adamkit.numpy
from adamkit.playground.app import create_app
from adamkit.playground.settings import MAX_OPTIMIZER_STEPS, MAX_OPTIMIZERS, MAX_STEPS, OPTIMIZERS
from adamkit.trajectories import FUNCTIONS, UncorrectedAdam, trace
from adamkit.trajectories import OPTIMIZERS as DRAWN

# Non-default settings: a rotated quadratic with noisy gradients and every knob moved.
SETTINGS = {
    "function": "quadratic", "condition": 40.0, "angle": 25.0, "steps": 17,
    "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.05, "decay": "decoupled",
    "amsgrad": True, "noise": 0.5, "seed": 3,
    "optimizers": [{"name": "adam", "lr": 0.07}, {"name": "nesterov", "lr": 0.01},
                   {"name": "adamax", "lr": 0.2}, {"name": "adadelta", "lr": 0.9}],
}
# What each of those optimizers is, written out here: the classes and arguments of adamkit.numpy.
EXPECTED = {
    "adam": (adamkit.numpy.Adam, dict(lr=0.07, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05,
                                      amsgrad=True, decoupled_weight_decay=True)),
    "nesterov": (adamkit.numpy.SGD, dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.05)),
    "adamax": (adamkit.numpy.Adamax, dict(lr=0.2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    "adadelta": (adamkit.numpy.Adadelta, dict(lr=0.9, weight_decay=0.05)),
}


def rotated_quadratic_gradient(point, condition=40.0, angle=25.0):
    """∇ of ½ θᵀ Rᵀ diag(10/κ, 10) R θ, R the rotation by ``angle`` degrees."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    rotation = np.array([[c, s], [-s, c]])
    return rotation.T @ np.diag([10.0 / condition, 10.0]) @ rotation @ point


def run_numpy(factory, arguments, gradient, start, steps, noise, seed):
    """The points and state dicts (if it keeps any) of ``factory`` stepped by hand, with the
    API's noise draws."""
    point = np.array(start, dtype=np.float64)
    optimizer = factory([point], **arguments)
    draws = np.random.default_rng(seed)
    points, states = [point.copy()], []
    for _ in range(steps):
        grad = gradient(point)
        if noise:
            grad = grad + noise * draws.standard_normal(2)
        optimizer.step([grad])
        points.append(point.copy())
        if hasattr(optimizer, "state"):
            states.append({key: np.array(value) for key, value in optimizer.state[0].items()})
    return np.array(points), states


@pytest.fixture(scope="module")
def client():
    return create_app().test_client()


def paths_of(client, body):
    response = client.post("/api/paths", json=body)
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/x-ndjson"
    return [json.loads(line) for line in response.data.decode().splitlines()]


def test_paths_and_states_are_adamkit_numpys(client):
    results = paths_of(client, SETTINGS)
    assert [result["name"] for result in results] == list(EXPECTED)
    for result in results:
        factory, arguments = EXPECTED[result["name"]]
        points, states = run_numpy(factory, arguments, rotated_quadratic_gradient,
                                   FUNCTIONS["ill-conditioned"].start, 17, 0.5, 3)
        np.testing.assert_allclose(result["path"], points, rtol=1e-12, atol=1e-14)
        for key, series in result["series"].items():
            if key != "step_size":
                np.testing.assert_allclose(series, [state[key] for state in states], rtol=1e-12, atol=1e-300)
        assert result["hyperparameters"]["lr"] == arguments["lr"]


def test_default_paths_are_those_of_adamkit_trajectories(client):
    steps = 30
    results = paths_of(client, {"function": "noisy", "steps": steps})
    expected = trace(FUNCTIONS["noisy"], FUNCTIONS["noisy"].optimizers, steps=steps)
    assert [result["name"] for result in results] == [trajectory.name for trajectory in expected]
    for result, trajectory in zip(results, expected):
        np.testing.assert_array_equal(result["path"], trajectory.path)


def test_adam_without_bias_correction_is_the_uncorrected_teaching_variant(client):
    body = {"function": "beale", "steps": 25, "beta1": 0.85, "beta2": 0.995, "eps": 1e-7,
            "bias_correction": False, "optimizers": [{"name": "adam", "lr": 0.03}]}
    [result] = paths_of(client, body)
    points, _ = run_numpy(UncorrectedAdam, dict(lr=0.03, betas=(0.85, 0.995), eps=1e-7),
                          FUNCTIONS["beale"].gradient, FUNCTIONS["beale"].start, 25, 0, 0)
    np.testing.assert_allclose(result["path"], points, rtol=1e-12)
    assert result["bias_correction"] is False
    corrected = paths_of(client, {**body, "bias_correction": True})[0]
    assert not np.allclose(corrected["path"][1], points[1])


@pytest.mark.parametrize("t", [1, 7, 17])
def test_inside_one_step_holds_adam_numbers(client, t):
    response = client.post("/api/step", json={**SETTINGS, "optimizer": 0, "t": t})
    assert response.status_code == 200, response.data
    step = response.json
    points, states = run_numpy(*EXPECTED["adam"], rotated_quadratic_gradient,
                               FUNCTIONS["ill-conditioned"].start, t, 0.5, 3)
    values = step["values"]
    np.testing.assert_allclose(values["theta_before"], points[t - 1], rtol=1e-12)
    np.testing.assert_allclose(values["theta"], points[t], rtol=1e-12)
    np.testing.assert_allclose(values["update"], points[t - 1] - points[t], rtol=1e-9, atol=1e-15)
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        np.testing.assert_allclose(values[key], states[-1][key], rtol=1e-12)
        before = states[-2][key] if t > 1 else np.zeros(2)
        np.testing.assert_allclose(values[f"{key}_before"], before, rtol=1e-12)
    bias_correction1, bias_correction2 = 1 - 0.8**t, 1 - 0.99**t
    assert step["scalars"]["bias_correction1"] == pytest.approx(bias_correction1, rel=1e-14)
    assert step["scalars"]["bias_correction2"] == pytest.approx(bias_correction2, rel=1e-14)
    m_hat = states[-1]["exp_avg"] / bias_correction1
    v_hat = states[-1]["max_exp_avg_sq"] / bias_correction2
    np.testing.assert_allclose(values["exp_avg_hat"], m_hat, rtol=1e-12)
    np.testing.assert_allclose(values["exp_avg_sq_hat"], v_hat, rtol=1e-12)
    np.testing.assert_allclose(values["step_size"], 0.07 / (np.sqrt(v_hat) + 1e-6), rtol=1e-12)
    # The update is AdamW's decay γλθ plus the step size times m̂.
    np.testing.assert_allclose(values["decay"], 0.07 * 0.05 * points[t - 1], rtol=1e-12)
    np.testing.assert_allclose(np.add(values["decay"], np.multiply(values["step_size"], m_hat)),
                               values["update"], rtol=1e-9)
    assert step["decoupled"] and step["amsgrad"] and step["bias_correction"]


def test_inside_one_step_of_adam_with_l2_folds_the_penalty_into_the_gradient(client):
    body = {**SETTINGS, "decay": "l2", "amsgrad": False, "noise": 0.0, "optimizer": 0, "t": 4}
    step = client.post("/api/step", json=body).json
    values = step["values"]
    gradient = rotated_quadratic_gradient(np.array(values["theta_before"]))
    np.testing.assert_allclose(values["gradient"], gradient, rtol=1e-12)
    np.testing.assert_allclose(values["gradient_used"], gradient + 0.05 * np.array(values["theta_before"]),
                               rtol=1e-12)
    assert "decay" not in values and not step["decoupled"]


def test_a_diverging_path_is_sent_as_null_not_nan(client):
    response = client.post("/api/paths", json={"function": "rosenbrock", "steps": 40,
                                               "optimizers": [{"name": "sgd", "lr": 10.0}]})
    text = response.data.decode()
    result = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert None in result["path"][-1]


def test_contours_of_the_rotated_quadratic_follow_its_angle(client):
    grid = client.post("/api/contours", json={"function": "quadratic", "condition": 100, "angle": 45}).json
    z = np.array(grid["z"], dtype=float)
    assert z.shape == (len(grid["y"]), len(grid["x"]))
    x, y = np.meshgrid(grid["x"], grid["y"])
    # Along the rotated narrow axis (x = y at 45°) the value rises slowly; across it, fast.
    along = z[np.unravel_index(np.argmin(np.abs(x - 1) + np.abs(y - 1)), z.shape)]
    across = z[np.unravel_index(np.argmin(np.abs(x - 1) + np.abs(y + 1)), z.shape)]
    assert along < across


RAW_BAD = [
    ('{"eps": NaN}', "eps", 422),
    ('{"lr": 1}', "lr", 422),
    ('{"beta2": Infinity}', "beta2", 422),
    ('{"weight_decay": 1e999}', "weight_decay", 422),
    ("[1, 2]", "body", 422),
    ("{not json", "body", 400),
]
BAD = [
    ({"steps": MAX_STEPS + 1}, "steps"),
    ({"steps": 0}, "steps"),
    ({"steps": True}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"steps": MAX_OPTIMIZER_STEPS // 2, "optimizers": [{"name": n} for n in OPTIMIZERS]}, "steps"),
    ({"beta1": 1.0}, "beta1"),
    ({"beta2": -0.1}, "beta2"),
    ({"eps": 0}, "eps"),
    ({"eps": "1e-8"}, "eps"),
    ({"weight_decay": -1}, "weight_decay"),
    ({"decay": "l1"}, "decay"),
    ({"amsgrad": "yes"}, "amsgrad"),
    ({"bias_correction": 1}, "bias_correction"),
    ({"noise": 11}, "noise"),
    ({"seed": -1}, "seed"),
    ({"function": "sphere"}, "function"),
    ({"function": ["rosenbrock"]}, "function"),
    ({"condition": 0.5}, "condition"),
    ({"angle": 91}, "angle"),
    ({"optimizers": []}, "optimizers"),
    ({"optimizers": "adam"}, "optimizers"),
    ({"optimizers": [{"name": "adam"}] * (MAX_OPTIMIZERS + 1)}, "optimizers"),
    ({"optimizers": [{"name": "madgrad"}]}, "optimizers[0].name"),
    ({"optimizers": [{"name": "adam"}, {"name": "adam"}]}, "optimizers[1].name"),
    ({"optimizers": [{"name": "adam", "lr": -0.1}]}, "optimizers[0].lr"),
    ({"optimizers": [{"name": "adam", "lr": 0}]}, "optimizers[0].lr"),
    ({"optimizers": [{"name": "adam", "momentum": 0.9}]}, "optimizers[0]"),
]


@pytest.mark.parametrize(("text", "field", "status"), RAW_BAD)
def test_bad_json_gets_4xx_naming_the_field(client, text, field, status):
    response = client.post("/api/paths", data=text, content_type="application/json")
    assert response.status_code == status
    assert response.json["field"] == field and field in response.json["error"]


@pytest.mark.parametrize(("route", "extra"), [("/api/paths", {}), ("/api/contours", {}),
                                               ("/api/step", {"t": 1})])
@pytest.mark.parametrize(("body", "field"), BAD)
def test_bad_settings_get_422_naming_the_field(client, route, extra, body, field):
    response = client.post(route, json={**body, **extra})
    assert response.status_code == 422, response.data
    assert response.json["field"] == field
    assert response.json["error"].startswith(field + ":")


@pytest.mark.parametrize(("body", "field"), [
    ({"optimizer": 4}, "optimizer"), ({"optimizer": -1}, "optimizer"), ({"optimizer": "0"}, "optimizer"),
    ({"t": 0}, "t"), ({"t": 18}, "t"), ({"t": None}, "t"),
])
def test_a_step_outside_the_request_gets_422(client, body, field):
    response = client.post("/api/step", json={**SETTINGS, **body})
    assert response.status_code == 422 and response.json["field"] == field


def test_other_bad_requests_and_the_server_keeps_answering(client):
    assert client.post("/api/paths", data="x" * (65 * 1024), content_type="application/json").status_code == 413
    assert client.get("/api/paths").status_code == 405
    assert client.get("/api/nothing").status_code == 404
    assert client.post("/api/paths", json={"steps": 2}).status_code == 200


def test_logreg_streams_the_loss_of_adamkit_compare(client):
    from adamkit.compare import numpy_training
    from adamkit.compare.tasks import LEARNING_RATES, TASKS, digits_split

    response = client.post("/api/logreg", json={"optimizers": ["adamw", "rmsprop"], "epochs": 2, "seed": 1})
    epochs = [json.loads(line) for line in response.data.decode().splitlines()]
    assert [(e["optimizer"], e["epoch"]) for e in epochs] == [
        ("adamw", 0), ("adamw", 1), ("adamw", 2), ("rmsprop", 0), ("rmsprop", 1), ("rmsprop", 2)]
    for name in ("adamw", "rmsprop"):
        _, run = numpy_training.train(TASKS["logreg"], name, LEARNING_RATES[name]["logreg"],
                                      digits_split(1), seed=1, epochs=2)
        assert [e["train_loss"] for e in epochs if e["optimizer"] == name] == run.train_loss
        assert [e["test_accuracy"] for e in epochs if e["optimizer"] == name] == run.test_accuracy


@pytest.mark.parametrize(("body", "field"), [
    ({"epochs": 41}, "epochs"), ({"epochs": 0}, "epochs"), ({"optimizers": ["adam", "adam"]}, "optimizers[1]"),
    ({"optimizers": ["madgrad"]}, "optimizers[0]"), ({"optimizers": []}, "optimizers"), ({"lr": 1}, "lr"),
])
def test_bad_logreg_settings_get_422(client, body, field):
    response = client.post("/api/logreg", json=body)
    assert response.status_code == 422 and response.json["field"] == field


def test_catalogue_lists_every_optimizer_and_function(client):
    catalogue = client.get("/api/catalogue").json
    assert set(catalogue["optimizers"]) == set(OPTIMIZERS)
    assert set(catalogue["functions"]) == {*FUNCTIONS, "quadratic"}
    assert catalogue["functions"]["beale"]["lrs"] == {name: FUNCTIONS["beale"].lrs[name] for name in OPTIMIZERS}


def test_the_page_draws_every_optimizer_of_trajectories_but_those_with_two_points():
    """Schedule-Free is left out: its step size needs its group's schedule (see settings.OPTIMIZERS)."""
    left_out = {name for name, choice in DRAWN.items() if choice.factory.spec.has_modes}
    assert left_out == {"schedulefree"}
    assert set(OPTIMIZERS) == set(DRAWN) - left_out
