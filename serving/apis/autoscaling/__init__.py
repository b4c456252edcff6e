"""autoscaling.internal.knative.dev API objects."""
