"""``knserve dashboard``: a web dashboard of Knative Services (list, revisions, live charts, traffic
editor, rollback, invoke); see ``dashboard.app`` for its pages."""
