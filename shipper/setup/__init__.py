"""Index template, ILM policy, Kibana data view and dashboards, and the ``setup``/``export`` commands."""
