import json

RATE = 0.047


def handle(event, context):
    """OpenFaaS python3-http style: event.body in, statusCode/body out."""
    order = json.loads(event.body or b"{}")
    return {"statusCode": 200, "body": {"tax": round(float(order["subtotal"]) * RATE, 2)}}
