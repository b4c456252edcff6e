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


def handle(event, context):
    """OpenFaaS python3-http style."""
    message = json.loads(event.body or b"{}")
    return {"statusCode": 200, "body": {"posted": True, "webhookStatus": post(message["title"], message["txt"])}}
