"""OpenFaaS's gateway API over Knative Services (``knserve gateway``), so ``faas-cli`` works."""
