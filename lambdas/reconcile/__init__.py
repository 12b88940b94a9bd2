"""Reconciler: a scheduled function that repairs jobs whose events were lost."""
