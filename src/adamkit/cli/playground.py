"""Adam, live in the browser: a local web app of optimizer paths, steps and training curves.

Starts a web server on 127.0.0.1 (only this machine can reach it unless --host says
otherwise), prints the page's address and opens it in the browser. On the page: paths of the
adamkit.numpy optimizers on 2-D functions with sliders for lr, β₁, β₂, ε and weight decay,
every number of one step, m, v and the step size over time, with and without bias correction,
AdamW against Adam + L2, and logistic regression on the digits trained live. In English and
中文 (--lang zh). Every number is computed on the server by adamkit.numpy. Ctrl-C stops it.
Needs the playground extra: pip install 'adamkit[playground]'.
"""

import sys

DEFAULT_PORT = 8765
INSTALL_HINT = "pip install 'adamkit[playground]'"


def add_arguments(parser):
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"the port to listen on, 0 for any free one (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--lang", choices=("en", "zh"), default="en",
                        help="the page's language until switched on the page (default en)")


def run(args):
    if not 0 <= args.port <= 65535:
        print(f"adamkit playground: --port must be in [0, 65535], got {args.port}", file=sys.stderr)
        return 2
    try:
        from adamkit.playground.server import serve
    except ModuleNotFoundError as error:
        print(f"adamkit playground: needs {error.name!r}, which is not installed; run: {INSTALL_HINT}",
              file=sys.stderr)
        return 2
    # An address that cannot be listened on is reported by werkzeug, which exits with status 1.
    serve(args.host, args.port, args.lang, not args.no_browser,
          announce=lambda url: print(f"adamkit playground: {url}  (Ctrl-C stops it)", flush=True))
    print("adamkit playground: stopped", flush=True)
    return 0
