RATE = 0.047


def main(data):
    """Plain style: JSON in, JSON out."""
    return {"tax": round(float(data["subtotal"]) * RATE, 2)}
