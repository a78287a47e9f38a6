"""``adamkit playground`` as a command: its URL, its language, Ctrl-C, and bad arguments."""

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

pytest.importorskip("flask")

from adamkit.cli import main as cli


def start(*arguments):
    process = subprocess.Popen(
        [sys.executable, "-m", "adamkit.cli.main", "playground", "--no-browser", *arguments],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return process, process.stdout.readline()


def stop(process):
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_it_listens_on_127_0_0_1_prints_its_url_and_stops_on_ctrl_c():
    process, line = start("--port", "0", "--lang", "zh")
    try:
        match = re.fullmatch(r"adamkit playground: (http://127\.0\.0\.1:(\d+)/\?lang=zh)  \(Ctrl-C stops it\)\n", line)
        assert match, line
        with urllib.request.urlopen(match.group(1).replace("/?lang=zh", "/api/catalogue"), timeout=20) as answer:
            assert json.load(answer)["lang"] == "zh"
        with urllib.request.urlopen(match.group(1), timeout=20) as answer:
            assert b"/static/vendor/plotly-cartesian.min.js" in answer.read()
    finally:
        status = stop(process)
    assert status == 0
    assert process.stdout.read() == "adamkit playground: stopped\n"


def test_a_port_in_use_is_an_error_not_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, line = start("--port", str(port))
        status = process.wait(timeout=60)
    assert status == 1 and line == ""
    error = process.stderr.read()
    assert f"Port {port} is in use" in error and "Traceback" not in error


def test_a_port_out_of_range_exits_2(capsys):
    assert cli.main(["playground", "--no-browser", "--port", "70000"]) == 2
    assert "--port must be in [0, 65535], got 70000" in capsys.readouterr().err


def test_without_flask_it_says_which_extra_to_install(monkeypatch, capsys):
    # The playground's modules are imported afresh, with flask not importable; all are put back.
    for name in [name for name in sys.modules if name.startswith("adamkit.playground")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "flask", None)
    assert cli.main(["playground", "--no-browser", "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert error == "adamkit playground: needs 'flask', which is not installed; run: pip install 'adamkit[playground]'\n"
