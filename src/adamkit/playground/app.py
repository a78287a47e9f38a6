"""The playground's web app (Flask): the page, its vendored JavaScript and the JSON API.

``GET /`` is the page; ``GET /api/catalogue`` lists the functions, optimizers and limits.
The ``POST`` routes take a JSON object of :mod:`adamkit.playground.settings` fields:

- ``/api/contours``: the function's contour grid;
- ``/api/paths``: one JSON line per optimizer (``application/x-ndjson``), each sent as soon as
  it is computed, with the path and, per step, the state arrays and the step size;
- ``/api/step``: everything in step ``t`` of optimizer number ``optimizer``;
- ``/api/logreg``: the live logistic-regression task, one JSON line per epoch.

A bad field is answered with 422 and ``{"field": ..., "error": ...}``; a body that is not JSON
with 400, one over :data:`MAX_BODY_BYTES` with 413. Numbers that are not finite (a diverging
path) are sent as ``null``.
"""

import json
import math
from importlib import resources

from flask import Flask, Response, jsonify, request

from adamkit.playground import logreg
from adamkit.playground.functions import contours, test_function
from adamkit.playground.paths import inside_step, paths
from adamkit.playground.settings import (
    MAX_OPTIMIZER_STEPS, MAX_OPTIMIZERS, MAX_STEPS, OPTIMIZERS, QUADRATIC, BadSetting, default_lr,
    default_noise, default_optimizers, default_steps, integer, read_settings,
)
from adamkit.trajectories import FUNCTIONS

#: The largest request body the API reads; a larger one is answered with 413.
MAX_BODY_BYTES = 64 * 1024
LANGUAGES = ("en", "zh")


def create_app(lang="en"):
    """The Flask app; ``lang`` is the page's language until the reader switches it."""
    static = resources.files("adamkit.playground") / "static"
    app = Flask(__name__, static_folder=str(static), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # the page lists optimizers and state keys in the server's order

    @app.get("/")
    def page():
        return app.send_static_file("index.html")

    @app.get("/api/catalogue")
    def catalogue():
        return jsonify(finite(catalogue_of(lang)))

    @app.post("/api/contours")
    def contour_grid():
        return jsonify(finite(contours(test_function(read_settings(json_body())))))

    @app.post("/api/paths")
    def optimizer_paths():
        settings = read_settings(json_body())
        lines = (json.dumps(finite(result)) + "\n" for result in paths(settings))
        return Response(lines, mimetype="application/x-ndjson")

    @app.post("/api/step")
    def step_details():
        body = json_body()
        settings = read_settings(body, also=("optimizer", "t"))
        index = integer(body, "optimizer", 0, 0, len(settings.runs) - 1)
        t = integer(body, "t", 1, 1, settings.steps)
        return jsonify(finite(inside_step(settings, index, t)))

    @app.post("/api/logreg")
    def logistic_regression():
        task = logreg.read_task(json_body())
        lines = (json.dumps(finite(epoch)) + "\n" for epoch in logreg.train(task))
        return Response(lines, mimetype="application/x-ndjson")

    @app.errorhandler(BadSetting)
    def bad_setting(error):
        return jsonify(field=error.field, error=str(error)), error.status

    @app.errorhandler(400)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    def http_error(error):
        return jsonify(field=None, error=error.description), error.code

    return app


def json_body():
    """The request's JSON body; anything unreadable is a 400 naming the body."""
    body = request.get_json(silent=True)
    if body is None:
        raise BadSetting("body", "must be JSON (Content-Type: application/json)", status=400)
    return body


def catalogue_of(lang):
    """What the page offers: functions, optimizers with their learning rates, limits, language."""
    functions = {name: {"title": function.title, "formula": function.formula} for name, function in FUNCTIONS.items()}
    functions[QUADRATIC] = {"title": "Quadratic", "formula": "(a u² + b w²) / 2"}
    return {
        "lang": lang,
        "functions": {
            name: {**about, "steps": default_steps(name), "noise": default_noise(name),
                   "optimizers": list(default_optimizers(name)),
                   "lrs": {optimizer: default_lr(name, optimizer) for optimizer in OPTIMIZERS}}
            for name, about in functions.items()
        },
        "optimizers": {
            name: {"label": choice.label, "adam_family": "betas" in choice.factory.hyperparameters}
            for name, choice in OPTIMIZERS.items()
        },
        "limits": {"steps": MAX_STEPS, "optimizers": MAX_OPTIMIZERS, "optimizer_steps": MAX_OPTIMIZER_STEPS},
        "logreg": logreg.catalogue(),
    }


def finite(value):
    """``value`` with every float that is not finite replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value
