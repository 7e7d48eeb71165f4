"""The Redis store: current catalogue, change feed, stock intervals, raw archive and queries.

Every key starts with ``f"{prefix}:"`` where ``prefix`` is ``config.redis.key_prefix``.
"""
