"""The admission webhook: Knative's defaulting and the validation rules a CRD cannot express.

``review`` holds pure functions from an AdmissionReview (v1) request to its response;
``jsonpatch`` diffs two objects into an RFC 6902 patch; ``server`` is the aiohttp (HTTPS)
application the controller process serves; ``registration`` builds the
Validating/MutatingWebhookConfiguration objects that point the API server at it.
"""

from serving.webhook.review import DEFAULTING_PATH, VALIDATION_PATH, admit

__all__ = ["DEFAULTING_PATH", "VALIDATION_PATH", "admit"]
