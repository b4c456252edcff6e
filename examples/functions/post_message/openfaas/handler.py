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


def handle(req):
    """OpenFaaS python3 style."""
    message = json.loads(req)
    return json.dumps({"posted": True, "webhookStatus": post(message["title"], message["txt"])})
