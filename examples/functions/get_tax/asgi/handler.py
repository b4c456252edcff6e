import json

RATE = 0.047


async def app(scope, receive, send):
    """An ASGI app (FastAPI's and Starlette's app objects are, and run the same way)."""
    if scope["type"] != "http":
        return
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    body = json.dumps({"tax": round(float(json.loads(raw or b"{}")["subtotal"]) * RATE, 2)}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
