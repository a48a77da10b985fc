"""Pieces shared by every protocol decoder."""
