"""The call queue: durable asynchronous calls (``Prefer: respond-async``) over NATS JetStream."""
