"""Comparing runs: loading session files, statistics, deltas to a baseline, the regression gate, reports."""
