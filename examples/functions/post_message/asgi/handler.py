import json
import os
import urllib.request


def post(title, txt):
    """Post {"title", "txt"} to $WEBHOOK_URL; the webhook's status."""
    request = urllib.request.Request(os.environ["WEBHOOK_URL"], method="POST",
                                     data=json.dumps({"title": title, "txt": txt}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


async def app(scope, receive, send):
    """An ASGI app (the webhook call is blocking; it runs in a thread so the loop stays free)."""
    import asyncio

    if scope["type"] != "http":
        return
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    fields = json.loads(raw or b"{}")
    status = await asyncio.to_thread(post, fields["title"], fields["txt"])
    body = json.dumps({"posted": True, "webhookStatus": status}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
