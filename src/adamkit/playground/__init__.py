"""``adamkit playground``: Adam, live in the browser, in English and 中文.

A local web app (Flask, :mod:`adamkit.playground.app`) whose every number is computed on the
server by the ``adamkit.numpy`` optimizers (:mod:`~adamkit.playground.paths`) and adamkit's
diagnostics formulas; the page (``static/``, drawn with the vendored plotly.js) only draws
what the JSON API returns. Needs the ``playground`` extra: ``pip install 'adamkit[playground]'``.
"""
