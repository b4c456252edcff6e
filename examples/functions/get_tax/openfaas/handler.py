import json

RATE = 0.047


def handle(req):
    """OpenFaaS python3 style: the body as text in, text out."""
    order = json.loads(req)
    return json.dumps({"tax": round(float(order["subtotal"]) * RATE, 2)})
