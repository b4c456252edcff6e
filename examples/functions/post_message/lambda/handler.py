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


def handler(event, context):
    """Lambda function URL style."""
    message = json.loads(event.get("body") or "{}")
    status = post(message["title"], message["txt"])
    return {"statusCode": 200, "body": json.dumps({"posted": True, "webhookStatus": status})}
