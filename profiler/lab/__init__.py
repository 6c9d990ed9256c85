"""Boards in a lab: where a run happens (placement), one user per board (lock), labgrid places."""
