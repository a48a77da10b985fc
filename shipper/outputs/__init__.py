"""Outputs: where published events go (console, file, discard, logstash, elasticsearch, redis).

Each output module exposes ``CONFIG`` (an attrs class built from ``output.<name>``) and
``create(config, ctx) -> Output``.
"""
