"""Lumberjack v2 (the Beats protocol): a sans-IO frame codec and an asyncio client."""
