import json

RATE = 0.047


def handler(event, context):
    """Lambda function URL style: {"subtotal": 100} -> {"tax": 4.7}."""
    order = json.loads(event.get("body") or "{}")
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"tax": round(float(order["subtotal"]) * RATE, 2)})}
