"""A plain function served by knserve's function sample: no web server code needed."""


def get_tax(subtotal: float) -> dict[str, float]:
    return {"tax": subtotal * 0.047}
