import json

RATE = 0.047


def app(environ, start_response):
    """A WSGI app (Flask's app object is one, and runs the same way)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    order = json.loads(environ["wsgi.input"].read(length) or b"{}")
    body = json.dumps({"tax": round(float(order["subtotal"]) * RATE, 2)}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
