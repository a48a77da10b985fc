"""Everything from frame bytes to event dicts, sans-IO: capture time is the only clock."""
