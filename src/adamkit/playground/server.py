"""Serving the playground: a threaded WSGI server on one address until Ctrl-C."""

import logging
import webbrowser

from werkzeug.serving import make_server

from adamkit.playground.app import create_app


def page_url(host, port, lang):
    """The page's address; an IPv6 host goes in brackets, and ``lang`` rides in the query."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?lang={lang}"


def serve(host, port, lang, open_browser, announce=print):
    """Serve the playground on ``host``:``port`` (0: a free port) until Ctrl-C.

    ``announce`` is called once with the page's URL when the server listens; the browser is
    opened on it if ``open_browser``. Each request runs on its own thread; the request log is
    left out, errors are not.
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, create_app(lang), threaded=True)
    url = page_url(host, server.port, lang)
    announce(url)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
