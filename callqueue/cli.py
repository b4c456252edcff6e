"""``knserve calls``: look at and steer a Service's asynchronous calls through the ingress.

    knserve calls get ID --host HOST        the call's status (JSON)
    knserve calls list --host HOST          the Service's dead letters
    knserve calls cancel ID --host HOST     cancel a queued call
    knserve calls retry ID --host HOST      replay a dead, failed or cancelled call

``--host`` is the Service's host name (its URL's host); ``--ingress`` where the ingress
answers (default ``$KNSERVE_INGRESS`` or http://127.0.0.1:8080). Side effects: HTTP requests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

CALLS_PATH = "/.well-known/knserve/calls"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="knserve calls", description="Asynchronous calls of a Service.")
    parser.add_argument("action", choices=("get", "list", "cancel", "retry"))
    parser.add_argument("call_id", nargs="?", help="the call's id (X-Call-Id); not for list")
    parser.add_argument("--host", required=True, help="the Service's host name, e.g. hello.default.example.com")
    parser.add_argument("--ingress", default=os.environ.get("KNSERVE_INGRESS", "http://127.0.0.1:8080"))
    parser.add_argument("--state", default="dead", help="list: which calls (only dead is kept in a list)")
    return parser.parse_args(argv)


def request_for(args: argparse.Namespace) -> urllib.request.Request:
    base = args.ingress.rstrip("/") + CALLS_PATH
    if args.action == "list":
        url, method = f"{base}?state={args.state}", "GET"
    else:
        url = f"{base}/{args.call_id}" + ("/retry" if args.action == "retry" else "")
        method = {"get": "GET", "cancel": "DELETE", "retry": "POST"}[args.action]
    return urllib.request.Request(url, method=method, headers={"Host": args.host})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.action != "list" and not args.call_id:
        print(f"knserve calls {args.action}: give the call's id", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(request_for(args), timeout=30) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        print(f"knserve calls {args.action}: {error.code}: {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as error:
        print(f"knserve calls: cannot reach the ingress at {args.ingress}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(json.loads(body), indent=2))
    return 0
