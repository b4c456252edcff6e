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


def app(environ, start_response):
    """A WSGI app."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    message = json.loads(environ["wsgi.input"].read(length) or b"{}")
    body = json.dumps({"posted": True, "webhookStatus": post(message["title"], message["txt"])}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
